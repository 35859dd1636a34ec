"""hf_softnce.mining"""
