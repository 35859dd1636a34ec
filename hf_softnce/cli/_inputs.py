"""Read a ``--data`` argument: a folder saved with ``save_to_disk`` or a JSON / JSONL file, checked before any work.

Code-search data ships as JSON (an array of objects) or JSON lines; both are read here with the standard library,
so a bad file is one line naming it. Columns are read as everywhere in hf_softnce (``query``/``code`` by name, else
by position); ``--columns QUERY,CODE`` picks two columns of a file by name (e.g. CoNaLa's ``intent,snippet``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hf_softnce.cli._errors import CLIError

JSON_SUFFIXES = (".json", ".jsonl")


def add_data_arguments(parser, *, required: bool, split: str, what: str = "") -> None:
    """``--data``, ``--columns`` and ``--split``, the input options of the subcommands that read (query, code) rows."""
    parser.add_argument("--data", required=required, default=None,
                        help="(query, code) pairs: a Dataset/DatasetDict folder saved with save_to_disk, or a .json "
                        f"(array of objects) / .jsonl file; columns query/code by name, else by position{what}"
                        + ("" if required else " (default: none)"))
    parser.add_argument("--columns", default=None, metavar="QUERY,CODE",
                        help="the query and code columns of --data by name (default: by name or position)")
    parser.add_argument("--split", default=None,
                        help=f"split of --data when it is a saved DatasetDict (default: {split}); other data has none")
    parser.set_defaults(default_split=split)


def load_rows(path: str, flag: str = "--data", *, split: str | None = None, columns: str | None = None,
              default_split: str = "train"):
    """The ``datasets.Dataset`` that ``path`` holds (``split`` of a saved DatasetDict, else ``default_split``); never
    empty. A ``split`` given for data without splits (a JSON file, a saved Dataset) is an error, not ignored."""
    if not os.path.exists(path):
        raise CLIError(f"{flag} {path!r}: no such file or folder.")
    if os.path.isdir(path):
        dataset = _load_saved(path, flag, split, default_split)
    elif path.lower().endswith(JSON_SUFFIXES):
        if split is not None:
            raise CLIError(f"--split {split!r}: {flag} {path!r} is a JSON file, which has no splits.")
        dataset = _load_json(path, flag)
    else:
        raise CLIError(f"{flag} {path!r} is neither a folder saved with save_to_disk nor a .json/.jsonl file.")
    if columns is not None:
        dataset = _pick_columns(dataset, columns, path)
    if len(dataset) == 0:
        raise CLIError(f"{flag} {path!r} holds no rows.")
    _check_texts(dataset, path, flag)
    return dataset


def _check_texts(dataset, path: str, flag: str) -> None:
    """Every query and code is text: a null (a JSON record without the key, or ``null``) or a number stops here,
    named, before a model is loaded, not inside the encoder. Other columns are the commands' own to read."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from hf_softnce.data.schema import resolve_columns

    try:
        columns = resolve_columns(dataset.column_names, f"{flag} {path!r}")
    except ValueError as error:
        raise CLIError(str(error)) from None
    arrow = dataset.with_format("arrow")  # the rows as the dataset shows them (a selection too), no Python copy
    for name in (columns.query, columns.code):
        column = arrow[name]
        if column.null_count:
            number = pc.index(pc.is_null(column), True).as_py() + 1
            raise CLIError(f"{flag} {path!r} record {number}: {name!r} is missing or null; every query and code is "
                           "text.")
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise CLIError(f"{flag} {path!r}: column {name!r} holds {column.type} values; every query and code is "
                           "text.")


def _load_saved(path: str, flag: str, split: str | None, default_split: str):
    from datasets import DatasetDict, load_from_disk

    try:
        data = load_from_disk(path)
    except FileNotFoundError:
        raise CLIError(f"{flag} {path!r} is a folder but not a dataset saved with save_to_disk.") from None
    except IndexError:
        # datasets cannot load a Dataset saved with no rows (it indexes its first, absent, table).
        raise CLIError(f"{flag} {path!r} holds no rows.") from None
    if isinstance(data, DatasetDict):
        split = default_split if split is None else split
        if split not in data:
            raise CLIError(f"--split {split!r} is not in {path} (splits: {list(data)}).")
        data = data[split]
    elif split is not None:
        raise CLIError(f"--split {split!r}: {flag} {path!r} is a saved Dataset, which has no splits.")
    return data


def _load_json(path: str, flag: str):
    from datasets import Dataset

    records = list(_json_records(path, flag))
    if not records:
        raise CLIError(f"{flag} {path!r} holds no rows.")
    keys = list(dict.fromkeys(key for record in records for key in record))
    try:
        # Keys in first-seen order, so "columns by position" means the file's own order; a missing key is null.
        return Dataset.from_dict({key: [record.get(key) for record in records] for key in keys})
    except Exception as error:  # noqa: BLE001 - pyarrow's type errors: mixed types in one column
        raise CLIError(f"{flag} {path!r}: the records do not form a table ({' '.join(str(error).split())[:160]}).")


def _json_records(path: str, flag: str):
    """Objects of a JSON array file or of a JSON-lines file (one object per non-blank line)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise CLIError(f"{flag} {path!r}: cannot read it ({error.strerror or error}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1  # the line an editor shows, as the loaders name it
        raise CLIError(f"{flag} {path}:{line}: line is not valid UTF-8 ({error.reason} at byte {error.start}).") \
            from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise CLIError(f"{flag} {path}:{error.lineno}: malformed JSON ({error.msg}).") from None
        items = enumerate(data, start=1)
        where = "record"
    else:
        items = ((number, _json_line(line, path, number, flag)) for number, line in enumerate(text.splitlines(), 1)
                 if line.strip())
        where = "line"
    for number, record in items:
        if not isinstance(record, dict):
            raise CLIError(f"{flag} {path} {where} {number}: expected a JSON object, got {type(record).__name__}.")
        yield record


def _json_line(line: str, path: str, number: int, flag: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise CLIError(f"{flag} {path}:{number}: malformed JSON line ({error.msg}).") from None


def _pick_columns(dataset, spec: str, path: str):
    """Keep the named query and code columns (renamed ``query``/``code``) and the identity columns."""
    from hf_softnce.data.schema import IDENTITY_COLUMNS

    names = [name.strip() for name in spec.split(",")]
    if len(names) != 2 or not all(names):
        raise CLIError(f"--columns expects QUERY,CODE (two column names), got {spec!r}.")
    missing = [name for name in names if name not in dataset.column_names]
    if missing:
        raise CLIError(f"--columns: {path} has no column {missing[0]!r} (it has {dataset.column_names}).")
    kept = [*names, *(c for c in dataset.column_names if c in IDENTITY_COLUMNS and c not in names)]
    dataset = dataset.select_columns(kept)
    renamed = {old: new for old, new in zip(names, ("query", "code")) if old != new}
    # A kept identity column may not take the new names; drop one the rename would collide with.
    clashing = [c for c in ("query", "code") if c in dataset.column_names and c not in names]
    if clashing:
        dataset = dataset.remove_columns(clashing)
    return dataset.rename_columns(renamed) if renamed else dataset


def describe_columns(dataset, path: str) -> None:
    """Say which columns are the query and the code when they were taken by position (a file's own names)."""
    from hf_softnce.data.schema import CODE_COLUMN, QUERY_COLUMN, resolve_columns

    columns = resolve_columns(dataset.column_names, f"--data {path}")
    if (columns.query, columns.code) != (QUERY_COLUMN, CODE_COLUMN):
        print(f"Reading {path}: query = column {columns.query!r}, code = column {columns.code!r} (by position; "
              "--columns QUERY,CODE to choose).", file=sys.stderr)
