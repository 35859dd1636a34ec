"""Reading published dataset files record by record, with errors that name the file and line.

Every record comes with ``where`` (``path:line`` for jsonl, ``path record i`` for a JSON array), so a
loader can say exactly which input is bad, or count it under ``errors="skip"``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from hf_softnce.data.report import DataFormatError, SkipReport, location


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def read_jsonl(path: Path, errors: str, report: SkipReport) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, record)`` for each line of a (optionally gzipped) jsonl file; blank lines are ignored.

    Lines are decoded one by one, so a non-UTF-8 line is reported with its number and the rest still read.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            where = location(path, line_number)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                report.bad_input(errors, "line is not valid UTF-8", where, str(error))
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                report.bad_input(errors, "malformed JSON line", where, error.msg)
                continue
            if not isinstance(record, dict):
                report.bad_input(errors, "JSON line is not an object", where, type(record).__name__)
                continue
            yield where, record


def read_json(path: Path, what: str):
    """A whole JSON document (CoSQA's files); a decoding error names the file and line."""
    path = Path(path)
    try:
        with _open_text(path) as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{location(path, error.lineno)}: malformed JSON in {what} ({error.msg}).") from error
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: {what} is not valid UTF-8 ({error}).") from error


def read_json_records(path: Path, what: str, errors: str, report: SkipReport) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, record)`` for a JSON file holding an array of objects."""
    data = read_json(path, what)
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: {what} should be a JSON array of objects, found {type(data).__name__}.")
    for index, record in enumerate(data):
        where = f"{path} record {index}"
        if not isinstance(record, dict):
            report.bad_input(errors, "record is not an object", where, type(record).__name__)
            continue
        yield where, record


# What each kind of field must hold. Published token lists are lists of strings; a string is accepted
# too (AdvTest's Hub rows and CoSQA's ``doc``). Identifiers are strings, or integers for CoSQA's indexes.
def _is_text(value) -> bool:
    return isinstance(value, str)


def _is_tokens(value) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(token, str) for token in value))


def _is_identifier(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


FIELD_KINDS = {
    "text": (_is_text, "a string"),
    "tokens": (_is_tokens, "a list of strings"),
    "identifier": (_is_identifier, "a string or an integer"),
}


def _describe(value) -> str:
    text = repr(value)
    return f"got {type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def field(record: dict, names: tuple[str, ...], where: str, errors: str, report: SkipReport, kind: str = "text"):
    """The first of ``names`` present in the record, checked to be of ``kind`` (see ``FIELD_KINDS``).

    A missing or wrongly typed field raises :class:`DataFormatError` naming file, line and field
    (``errors="raise"``) or is counted as a skip. Returns ``None`` when the record is skipped.
    """
    for name in names:
        if name in record and record[name] is not None:
            value = record[name]
            check, expected = FIELD_KINDS[kind]
            if not check(value):
                report.bad_input(errors, f"field {name!r} is not {expected}", where, _describe(value))
                return None
            return value
    wanted = " or ".join(repr(name) for name in names)
    report.bad_input(errors, f"missing field {wanted}", where, f"fields present: {sorted(record)[:12]}")
    return None


def optional_field(record: dict, name: str, where: str, errors: str, report: SkipReport, default=None):
    """An optional string field (``repo``, ``path``, ``func_name``): absent/null gives ``default``.

    Returns ``(ok, value)``; ``ok`` is False when the field is present with another type and the record skipped.
    """
    value = record.get(name)
    if value is None:
        return True, default
    if not isinstance(value, str):
        report.bad_input(errors, f"field {name!r} is not a string", where, _describe(value))
        return False, None
    return True, value


def binary_label(record: dict, where: str, errors: str, report: SkipReport, default: int = 1) -> int | None:
    """A 0/1 ``label``: the integers 0 and 1, or the strings ``"0"``/``"1"`` (re-exported files stringify)."""
    value = record.get("label", default)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return int(value)
    report.bad_input(errors, "field 'label' is not 0 or 1", where, _describe(value))
    return None


def joined_tokens(value) -> str:
    """Token lists as published (``["def", "f", ...]``) joined by spaces; strings pass through."""
    if isinstance(value, str):
        return " ".join(value.split())
    return " ".join(value)
