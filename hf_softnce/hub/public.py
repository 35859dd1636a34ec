"""What may be published of a run: plain JSON/YAML values, with tokens redacted and local paths left out."""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
from collections.abc import Mapping

# Training arguments that only name places on the training machine: left out of what is published.
LOCAL_ONLY_ARGS = ("output_dir", "logging_dir", "resume_from_checkpoint", "data_dir", "cosqa_dir")


def plain(value):
    """JSON/YAML-safe copy: numbers, strings, lists and dicts kept; anything else (functions, enums) as text."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if value is None or type(value) in (bool, int, float, str):  # exact types: YAML cannot dump numpy subclasses
        return value
    if isinstance(value, numbers.Integral):  # numpy integers and floats, as metrics often return them
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    return str(value)


def is_local_path(value) -> bool:
    """A string naming a place on this machine: absolute, relative to it ("./", "../", "~"), or an existing path
    with a separator. Such a value means nothing to a Hub visitor and may reveal user names."""
    if not isinstance(value, str) or not value or "://" in value:
        return False
    if value.startswith(("/", "./", "../", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", value):
        return True
    return ("/" in value or os.sep in value) and os.path.exists(value)


def public_values(value):
    """What may be published of a config or training arguments: token values redacted, local-only keys
    (output_dir, ...) dropped, and any other local path replaced by ``"<local>"``."""
    if isinstance(value, dict):
        public = {}
        for key, item in value.items():
            if key in LOCAL_ONLY_ARGS:
                continue
            if re.search(r"(^|_)token$", key) and isinstance(item, str) and item:
                public[key] = "<redacted>"
            else:
                public[key] = public_values(item)
        return public
    if isinstance(value, list):
        return [public_values(v) for v in value]
    return "<local>" if is_local_path(value) else value
