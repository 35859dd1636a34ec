"""Each progress bar printed once when stderr is not a terminal (a log file, a pipe, CI).

tqdm redraws a bar in place with ``\\r``; a terminal overwrites it, but a log keeps every redraw, so a bar
that changed its description or closed showed up two or three times ("Saving the dataset", "Mining
negatives"). :class:`FinalLines` drops every part of a line that a ``\\r`` later overwrote: a bar reaches the
log once, in its final state, and ordinary lines pass through unchanged.
"""

from __future__ import annotations

import contextlib
import sys


class FinalLines:
    """A text stream that writes each line as it stands when its newline comes."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        for piece in _pieces(text):
            if piece == "\r":
                self._pending = ""  # what follows redraws this line
            elif piece == "\n":
                self._stream.write(self._pending.rstrip(" ") + "\n")
                self._pending = ""
            else:
                self._pending += piece
        return len(text)

    def flush(self) -> None:
        # A pending partial line may still be redrawn: only completed lines are flushed.
        self._stream.flush()

    def close_line(self) -> None:
        """Write what is pending (a last line without a newline) and flush."""
        if self._pending:
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _pieces(text: str):
    start = 0
    for index, char in enumerate(text):
        if char in "\r\n":
            if index > start:
                yield text[start:index]
            yield char
            start = index + 1
    if start < len(text):
        yield text[start:]


@contextlib.contextmanager
def bars_once():
    """While active, stderr shows each progress bar once unless it is a terminal (where bars redraw in place)."""
    original = sys.stderr
    if getattr(original, "isatty", lambda: False)():
        yield
        return
    sys.stderr = FinalLines(original)
    try:
        yield
    finally:
        sys.stderr.close_line()
        sys.stderr = original
