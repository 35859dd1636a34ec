"""The token scan: a folder about to be uploaded must hold no Hugging Face token, in any name, encoding or archive."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# Hugging Face user access tokens: "hf_" followed by 34 letters/digits.
TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{34}(?![A-Za-z0-9])")

# Text encodings a token is looked for in: UTF-8/ASCII, and the wide encodings in which each character's
# bytes are interleaved with zeros (a Windows-saved note, a UTF-16 JSON export).
_SCAN_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_ALNUM = "[A-Za-z0-9]"


def _token_patterns() -> list[re.Pattern]:
    patterns = []
    for encoding in _SCAN_ENCODINGS:
        # Each character of "hf_" + 34 alphanumerics, in this encoding, as a regex over bytes.
        pad = re.escape(b"\0" * (len("a".encode(encoding)) - 1))
        alnum = (pad + _ALNUM.encode()) if encoding.endswith("be") else (_ALNUM.encode() + pad)
        prefix = re.escape("hf_".encode(encoding))
        patterns.append(re.compile(prefix + b"(?:" + alnum + b"){34}(?!" + alnum + b")"))
    return patterns


_TOKEN_PATTERNS = _token_patterns()
# Compressed formats whose content is scanned after decompression; the others are refused unread.
_STREAM_COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
_UNREADABLE_COMPRESSIONS = {b"\x28\xb5\x2f\xfd": "zstd", b"7z\xbc\xaf\x27\x1c": "7z", b"Rar!": "rar"}


def text_holds_token(text: str, secrets: Iterable[str]) -> bool:
    return any(secret in text for secret in secrets) or TOKEN_PATTERN.search(text.encode()) is not None


def _stream_holds_token(handle, needles: list[bytes], chunk_size: int) -> bool:
    """Scan a binary stream in overlapping chunks (big weights are never read whole)."""
    overlap = max([len(n) for n in needles] + [4 * 40])
    tail = b""
    while chunk := handle.read(chunk_size):
        window = tail + chunk
        if any(n in window for n in needles) or any(p.search(window) for p in _TOKEN_PATTERNS):
            return True
        tail = window[-overlap:]
    return False


def holds_token(path: Path, secrets: Iterable[str], chunk_size: int = 1 << 22) -> str | None:
    """Why ``path`` must not be uploaded, or ``None``: it holds one of ``secrets`` or a token-shaped string,
    as UTF-8 or UTF-16/32 text, raw or inside gzip/bz2/xz/zip compression; or it is compressed in a format
    that cannot be scanned (zstd, 7z, rar, an encrypted zip member), so it is refused unread.
    """
    import bz2
    import gzip
    import lzma
    import zipfile

    needles = sorted({s.encode(encoding) for s in secrets if s for encoding in _SCAN_ENCODINGS}, key=len)
    with path.open("rb") as handle:
        # Raw bytes first: covers plain text, and a gzip header's stored file name.
        if _stream_holds_token(handle, needles, chunk_size):
            return "contains a Hugging Face token"
        handle.seek(0)
        magic = handle.read(8)
    for prefix, name in _UNREADABLE_COMPRESSIONS.items():
        if magic.startswith(prefix):
            return f"is {name}-compressed and cannot be scanned for tokens (upload it uncompressed)"
    openers = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
    for prefix, name in _STREAM_COMPRESSIONS.items():
        if magic.startswith(prefix):
            try:
                with openers[name](path, "rb") as stream:
                    found = _stream_holds_token(stream, needles, chunk_size)
            except (OSError, EOFError, lzma.LZMAError) as error:
                return f"looks {name}-compressed but cannot be decompressed to scan for tokens ({error})"
            return f"contains a Hugging Face token ({name}-compressed)" if found else None
    if magic.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if text_holds_token(member.filename, secrets):
                        return "contains a Hugging Face token (a zip member's name)"
                    if member.flag_bits & 0x1:
                        return f"holds the encrypted zip member {member.filename!r}, which cannot be scanned for tokens"
                    with archive.open(member) as stream:
                        if _stream_holds_token(stream, needles, chunk_size):
                            return f"contains a Hugging Face token (zip member {member.filename!r})"
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
            return f"looks like a zip archive but cannot be read to scan for tokens ({error})"
    return None


def redact(text: str, token: str | None) -> str:
    """``text`` with the token replaced, for logs and error messages."""
    text = str(text)
    if token:
        text = text.replace(token, "<token>")
    return TOKEN_PATTERN.sub(b"hf_<redacted>", text.encode()).decode()
