"""Helpers shared by the loss tests: real tokenized batches and gradient snapshots."""

from __future__ import annotations

import torch

QUERIES = [
    "Return the number of lines in a text file.",
    "Parse an ISO 8601 date string into a datetime.",
    "Compute the SHA-256 digest of a byte string.",
    "Sort a list of records by their timestamp.",
    "Open a gzip file for reading text.",
    "Convert a camelCase name to snake_case.",
]
CODES = [
    "def count_lines(path):\n    with open(path) as f:\n        return sum(1 for _ in f)",
    "def parse_date(text):\n    return datetime.fromisoformat(text)",
    "def sha256(data):\n    return hashlib.sha256(data).hexdigest()",
    "def sort_records(records):\n    return sorted(records, key=lambda r: r.timestamp)",
    "def open_gzip(path):\n    return gzip.open(path, 'rt')",
    "def snake(name):\n    return re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()",
]
NEGATIVES = [
    "def count_words(path):\n    with open(path) as f:\n        return len(f.read().split())",
    "def format_date(value):\n    return value.isoformat()",
    "def md5(data):\n    return hashlib.md5(data).hexdigest()",
    "def reverse(records):\n    return list(reversed(records))",
    "def open_bz2(path):\n    return bz2.open(path, 'rt')",
    "def camel(name):\n    return ''.join(p.title() for p in name.split('_'))",
]


def features(model, *columns):
    return [model.preprocess(list(column)) for column in columns]


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def loss_and_gradients(model, loss_fn, feats, labels=None):
    model.zero_grad(set_to_none=True)
    value = loss_fn(feats, labels)
    value.backward()
    return value.detach(), gradients(model)


def assert_same_gradients(a: dict, b: dict, atol: float = 1e-6) -> None:
    """Equal to ``atol`` relative to each gradient's largest entry (float32 sums in another order differ
    by a few ulps of the largest term, e.g. token-type embeddings summed over every token)."""
    assert a.keys() == b.keys() and a
    for name in a:
        scale = max(1.0, b[name].abs().max().item())
        torch.testing.assert_close(a[name], b[name], atol=atol * scale, rtol=0, msg=f"gradient of {name} differs")
