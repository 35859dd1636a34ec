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


# Archives inside archives are opened to this depth; deeper nesting is refused unread.
MAX_ARCHIVE_DEPTH = 4


def holds_token(path: Path, secrets: Iterable[str], chunk_size: int = 1 << 22) -> str | None:
    """Why ``path`` must not be uploaded, or ``None``: it holds one of ``secrets`` or a token-shaped string,
    as UTF-8 or UTF-16/32 text, raw or inside gzip/bz2/xz/zip compression, nested to :data:`MAX_ARCHIVE_DEPTH`
    (a gzip inside a zip inside a tar.gz); or it is compressed in a format that cannot be scanned (zstd, 7z, rar, an
    encrypted zip member, deeper nesting), so it is refused unread.
    """
    needles = sorted({s.encode(encoding) for s in secrets if s for encoding in _SCAN_ENCODINGS}, key=len)
    return _scan(lambda: path.open("rb"), needles, list(secrets), chunk_size, depth=0)


def _scan(open_stream, needles: list[bytes], secrets: list[str], chunk_size: int, depth: int,
          where: str = "") -> str | None:
    """:func:`holds_token` for the bytes ``open_stream()`` gives; ``where``: the archive path so far, for the message.

    Inside an archive, bytes that only look compressed (a tensor's data starting with gzip's two magic bytes) and do
    not decompress are data: they were scanned raw like any other.
    """
    import bz2
    import gzip
    import lzma
    import zipfile

    with open_stream() as handle:
        # Raw bytes first: covers plain text, a tar's members, and a gzip header's stored file name.
        if _stream_holds_token(handle, needles, chunk_size):
            return f"contains a Hugging Face token{where}"
    with open_stream() as handle:
        magic = handle.read(8)
    for prefix, name in _UNREADABLE_COMPRESSIONS.items():
        if magic.startswith(prefix):
            return f"is {name}-compressed{where} and cannot be scanned for tokens (upload it uncompressed)"
    compressed = next((name for prefix, name in _STREAM_COMPRESSIONS.items() if magic.startswith(prefix)), None)
    is_zip = magic.startswith(b"PK\x03\x04")
    if (compressed or is_zip) and depth >= MAX_ARCHIVE_DEPTH:
        return f"nests archives deeper than {MAX_ARCHIVE_DEPTH}{where} and cannot be scanned for tokens"
    if compressed:
        opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compressed]
        try:
            return _scan(lambda: opener(open_stream(), "rb"), needles, secrets, chunk_size, depth + 1,
                         f"{where} ({compressed}-compressed)")
        except (OSError, EOFError, lzma.LZMAError) as error:
            if depth:
                return None
            return f"looks {compressed}-compressed but cannot be decompressed to scan for tokens ({error})"
    if is_zip:
        try:
            with zipfile.ZipFile(open_stream()) as archive:
                for member in archive.infolist():
                    if text_holds_token(member.filename, secrets):
                        return f"contains a Hugging Face token (a zip member's name){where}"
                    if member.flag_bits & 0x1:
                        return f"holds the encrypted zip member {member.filename!r}{where}, which cannot be scanned " \
                               "for tokens"
                    found = _scan(lambda m=member: archive.open(m), needles, secrets, chunk_size, depth + 1,
                                  f"{where} (zip member {member.filename!r})")
                    if found:
                        return found
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
            if depth:
                return None
            return f"looks like a zip archive but cannot be read to scan for tokens ({error})"
    return None


def redact(text: str, token: str | None) -> str:
    """``text`` with the token replaced, for logs and error messages."""
    text = str(text)
    if token:
        text = text.replace(token, "<token>")
    return TOKEN_PATTERN.sub(b"hf_<redacted>", text.encode()).decode()
