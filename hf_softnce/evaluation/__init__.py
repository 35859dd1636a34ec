"""hf_softnce.evaluation"""
