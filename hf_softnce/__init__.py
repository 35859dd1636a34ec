"""hf_softnce: negative-aware contrastive training for code-search embedding models, on sentence-transformers."""

__version__ = "0.1.0"
