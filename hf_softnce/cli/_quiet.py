"""Each progress bar printed once when stderr is not a terminal (a log file, a pipe, CI).

tqdm redraws a bar in place with ``\\r``; a terminal overwrites it, but a log keeps every redraw, so a bar
that changed its description or closed showed up two or three times ("Saving the dataset", "Mining
negatives"). :class:`FinalLines` drops every part of a line that a ``\\r`` later overwrote: a bar reaches the
log once, in its final state, and ordinary lines pass through unchanged.
"""

from __future__ import annotations

import contextlib
import re
import sys


CURSOR_UP = "\x1b[A"


class FinalLines:
    """A text stream that writes each line as it stands when it can no longer be redrawn.

    A bar nested in another (sentence-transformers' "Batches" inside its evaluator's "Corpus Chunks") is drawn
    one line lower and the cursor moved back up (``\\n``, the bar, ``\\x1b[A``). So a completed bar line (or an
    empty one) is held until nothing can return to it: ordinary text starts the next line, or the next bar line
    is completed; a cursor-up drops the line it leaves and returns to the held one. Text lines pass at once.
    """

    def __init__(self, stream) -> None:
        self._stream = stream
        self._pending = ""
        self._is_bar = False  # the current line was started by a carriage return (a bar redraws)
        self._held: list[str] = []

    def write(self, text: str) -> int:
        for piece in _pieces(text):
            if piece == "\r":
                self._pending, self._is_bar = "", True  # what follows redraws this line
            elif piece == CURSOR_UP:
                self._pending, self._is_bar = (self._held.pop(), True) if self._held else ("", False)
            elif piece == "\n":
                self._end_line()
            else:
                if not self._pending and not self._is_bar:
                    self._release()  # text, not a bar: nothing returns to the held lines
                self._pending += piece
        return len(text)

    def _end_line(self) -> None:
        line = self._pending.rstrip(" ")
        if self._is_bar:
            self._release()  # a completed bar line: the lines above it are final
        if self._is_bar or not line:
            self._held.append(line)
        else:
            self._stream.write(line + "\n")
        self._pending, self._is_bar = "", False

    def _release(self) -> None:
        for line in self._held:
            self._stream.write(line + "\n")
        self._held = []

    def flush(self) -> None:
        # A pending or held line may still be redrawn: only final lines are flushed.
        self._stream.flush()

    def close_line(self) -> None:
        """Write what is held and pending (a last line without a newline) and flush."""
        self._release()
        if self._pending:
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _pieces(text: str):
    """``text`` split into carriage returns, newlines, cursor-ups and the runs of text between them."""
    for piece in re.split(r"(\r|\n|\x1b\[A)", text):
        if piece:
            yield piece


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
