"""hf_softnce.losses"""
