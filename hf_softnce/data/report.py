"""Counting what the data layer leaves out, so that nothing is dropped silently.

The corpus builder and the loaders share one :class:`SkipReport`. Two kinds of entries:

* ``filtered``: rows removed on purpose by a rule (short docstring, test function, trivial body, ...);
* ``skipped``: bad input passed over because the caller asked for ``errors="skip"`` (malformed jsonl line,
  missing field, non-UTF-8 or unparsable source file, ...). With ``errors="raise"`` the same input raises
  :class:`DataFormatError` naming the file and line.
"""

from __future__ import annotations

import sys
from collections import Counter

ERRORS_MODES = ("raise", "skip")
# Locations kept per reason. Bad input (skips) keeps every location up to MAX_SKIP_LOCATIONS, so each
# culprit can be found; rule filters (thousands of ordinary functions) keep a few examples. The counts are
# always complete; ``format`` prints MAX_PRINTED locations and says how many more there are.
MAX_EXAMPLES = 3
MAX_SKIP_LOCATIONS = 1000
MAX_PRINTED = 3


class DataFormatError(ValueError):
    """Bad input data; the message names the file (and line, where there is one)."""


def check_errors_mode(errors: str) -> str:
    if errors not in ERRORS_MODES:
        raise ValueError(f"errors must be one of {ERRORS_MODES}, got {errors!r}.")
    return errors


def location(path, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


class SkipReport:
    """Counts of filtered and skipped items, by reason, with a few example locations each."""

    def __init__(self) -> None:
        self.filtered: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        # Whole-result problems that are no single item's fault (an empty split), printed first.
        self.warnings: list[str] = []

    # -- recording -------------------------------------------------------------------------------------
    def filter(self, reason: str, where: str | None = None, count: int = 1) -> None:
        """Record ``count`` item(s) removed on purpose by a rule."""
        self.filtered[reason] += count
        self._example(reason, where, MAX_EXAMPLES)

    def skip(self, reason: str, where: str | None = None, count: int = 1) -> None:
        """Record ``count`` bad item(s) passed over under ``errors="skip"``."""
        self.skipped[reason] += count
        self._example(reason, where, MAX_SKIP_LOCATIONS)

    def warn(self, message: str) -> None:
        """Record a warning about the result as a whole (kept once)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def bad_input(self, errors: str, reason: str, where: str, detail: str = "") -> None:
        """Raise :class:`DataFormatError` (``errors="raise"``) or count a skip (``errors="skip"``)."""
        if errors == "raise":
            message = f"{where}: {reason}" + (f" ({detail})" if detail else "")
            raise DataFormatError(message + ". Pass errors='skip' to skip such input and count it instead.")
        self.skip(reason, where)

    def _example(self, reason: str, where: str | None, limit: int) -> None:
        if where is not None:
            examples = self.examples.setdefault(reason, [])
            if len(examples) < limit:
                examples.append(where)

    def _limit(self, reason: str) -> int:
        return MAX_SKIP_LOCATIONS if reason in self.skipped else MAX_EXAMPLES

    def merge(self, other: "SkipReport") -> "SkipReport":
        self.filtered.update(other.filtered)
        self.skipped.update(other.skipped)
        for message in other.warnings:
            self.warn(message)
        for reason, wheres in other.examples.items():
            for where in wheres:
                self._example(reason, where, self._limit(reason))
        return self

    # -- reading ---------------------------------------------------------------------------------------
    @property
    def total_filtered(self) -> int:
        return sum(self.filtered.values())

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def __bool__(self) -> bool:
        return bool(self.filtered or self.skipped or self.warnings)

    def to_dict(self) -> dict:
        return {"filtered": dict(self.filtered), "skipped": dict(self.skipped), "examples": self.examples,
                "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: dict) -> "SkipReport":
        report = cls()
        report.filtered.update(data.get("filtered", {}))
        report.skipped.update(data.get("skipped", {}))
        report.examples = {reason: list(wheres) for reason, wheres in data.get("examples", {}).items()}
        report.warnings = list(data.get("warnings", []))
        return report

    def format(self, title: str = "Data report") -> str:
        lines = [f"{title}: {self.total_filtered} filtered by rule, {self.total_skipped} skipped as bad input"]
        lines.extend(f"  warning  {message}" for message in self.warnings)
        for heading, counts in (("filtered", self.filtered), ("skipped", self.skipped)):
            for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
                examples = self.examples.get(reason)
                suffix = ""
                if examples and heading == "skipped":
                    suffix = f"  at {', '.join(examples[:MAX_PRINTED])}"
                    if count > MAX_PRINTED:
                        suffix += f" (+{count - MAX_PRINTED} more" + (
                            "; all in .examples)" if len(examples) == count else
                            f"; first {len(examples)} in .examples)")
                lines.append(f"  {heading:<8} {count:>7}  {reason}{suffix}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def print(self, title: str = "Data report", file=None) -> None:
        print(self.format(title), file=file or sys.stderr)
