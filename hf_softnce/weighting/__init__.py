"""hf_softnce.weighting"""
