"""hf_softnce.retrieval"""
