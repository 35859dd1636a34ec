"""Shared fixtures: tiny real models built from a config (seconds), and the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tests' embeddings and corpora go to a cache of their own, removed at exit: never into the user's
# HF_SOFTNCE_CACHE (~/.cache/hf_softnce), which a real run would then read. Subprocesses inherit it.
_TEST_CACHE = tempfile.mkdtemp(prefix="hf_softnce-tests-cache-")
os.environ["HF_SOFTNCE_CACHE"] = _TEST_CACHE
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)


def _shared_data() -> Path:
    # Where the library itself looks (HF_SOFTNCE_DATA_DIR, ../shared/data): the folder holding CoSQA, else the
    # checkout's ../shared/data (absent: the tests that need it skip and say where they looked).
    from hf_softnce.data.locate import find_shared_data_dir

    cosqa = find_shared_data_dir("cosqa", marker="cosqa-retrieval-dev-500.json")
    return cosqa.parent if cosqa is not None else Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED_DATA = _shared_data()
SHARED_COSQA = SHARED_DATA / "cosqa"


def tiny_model_dir(seed: int = 0, hidden: int = 32, layers: int = 2, max_seq_length: int = 64) -> str:
    """Save (once per settings) a randomly initialised BERT with all-MiniLM-L6-v2's real tokenizer."""
    import tempfile

    from transformers import AutoTokenizer, BertConfig, BertModel

    from hf_softnce.defaults import default_model_path

    key = (seed, hidden, layers, max_seq_length)
    if key not in _TINY_DIRS:
        path = tempfile.mkdtemp(prefix="hf_softnce_tiny_")
        torch.manual_seed(seed)
        tokenizer = AutoTokenizer.from_pretrained(default_model_path())
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=hidden * 2,
            max_position_embeddings=max_seq_length + 2,
        )
        BertModel(config).save_pretrained(path)
        tokenizer.save_pretrained(path)
        _TINY_DIRS[key] = path
    return _TINY_DIRS[key]


_TINY_DIRS: dict = {}


def build_tiny_model(seed: int = 0, hidden: int = 32, layers: int = 2, max_seq_length: int = 64):
    """A real BERT-style SentenceTransformer (random weights, real tokenizer, mean pooling) in about a second."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from sentence_transformers.base.modules.transformer import Transformer

    transformer = Transformer(tiny_model_dir(seed, hidden, layers, max_seq_length), max_seq_length=max_seq_length)
    return SentenceTransformer(modules=[transformer, Pooling(hidden, pooling_mode="mean")], device="cpu")


@pytest.fixture
def tiny_model():
    return build_tiny_model()


@pytest.fixture(scope="session")
def minilm_path():
    from hf_softnce.defaults import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def cosqa_dir():
    if not (SHARED_COSQA / "cosqa-retrieval-dev-500.json").exists():
        pytest.skip(f"CoSQA dev split not found at {SHARED_COSQA}")
    return SHARED_COSQA


# Real standard-library modules, each its own "package" for the by-package split: a small real corpus in seconds.
SMALL_CORPUS_MODULES = (
    "textwrap.py", "shlex.py", "calendar.py", "fractions.py", "difflib.py", "ftplib.py", "smtplib.py",
    "tarfile.py", "zipfile", "json", "csv.py", "argparse.py", "pathlib.py", "string.py", "base64.py", "statistics.py",
)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A saved DatasetDict (train/valid/test) of (docstring, function) pairs from ~16 real stdlib modules."""
    import shutil
    import sysconfig

    from hf_softnce.data import build_python_corpus

    source = tmp_path_factory.mktemp("stdlib_subset")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in SMALL_CORPUS_MODULES:
        if (stdlib / name).is_dir():
            shutil.copytree(stdlib / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        elif (stdlib / name).exists():
            shutil.copy(stdlib / name, source / name)
    out = tmp_path_factory.mktemp("small_corpus")
    build_python_corpus(sources=[str(source)], output_dir=out, cache=False, progress=False, workers=1)
    return out
