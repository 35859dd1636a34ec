"""The token scan: a folder about to be uploaded must hold no Hugging Face token, in any name, encoding or archive."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
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


def _stream_holds_token(handle, needles: list[bytes], chunk_size: int, first: bytes = b"") -> bool:
    """Scan a binary stream in overlapping chunks (big weights are never read whole); ``first``: bytes already read
    from it."""
    overlap = max([len(n) for n in needles] + [4 * 40])
    tail, chunk = b"", first or handle.read(chunk_size)
    while chunk:
        window = tail + chunk
        if any(n in window for n in needles) or any(p.search(window) for p in _TOKEN_PATTERNS):
            return True
        tail = window[-overlap:]
        chunk = handle.read(chunk_size)
    return False


# Archives inside archives are opened to this depth; deeper nesting is refused unread.
MAX_ARCHIVE_DEPTH = 4
# An archive member is copied here before it is opened as an archive of its own (a zip needs to seek), in memory up to
# this size, then on disk.
_SPOOL_BYTES = 32 << 20


def holds_token(path: Path, secrets: Iterable[str], chunk_size: int = 1 << 22) -> str | None:
    """Why ``path`` must not be uploaded, or ``None``: it holds one of ``secrets`` or a token-shaped string,
    as UTF-8 or UTF-16/32 text, raw or inside gzip/bz2/xz/zip/tar, nested to :data:`MAX_ARCHIVE_DEPTH` (a gzip inside a
    zip inside a tar.gz); or it is compressed in a format that cannot be scanned (zstd, 7z, rar, an encrypted zip
    member, a stream that breaks, deeper nesting), so it is refused unread.

    Inside an archive, bytes that only start like a compressed stream or an archive (a tensor's data in a checkpoint)
    and do not open as one are data: they were scanned raw like any other.
    """
    needles = sorted({s.encode(encoding) for s in secrets if s for encoding in _SCAN_ENCODINGS}, key=len)

    @contextmanager
    def open_file():
        with path.open("rb") as handle:
            yield handle

    return _scan(open_file, needles, list(secrets), chunk_size, depth=0)


def _scan(open_stream, needles: list[bytes], secrets: list[str], chunk_size: int, depth: int,
          where: str = "") -> str | None:
    """:func:`holds_token` for the bytes ``open_stream()`` (a context manager) gives, opened once per pass;
    ``where``: the archive path so far, for the message."""
    with open_stream() as handle:
        head = handle.read(512)  # a format's magic bytes; a tar's "ustar" at 257
        # Raw bytes first: covers plain text, a tar's plain members, and a gzip header's stored file name.
        if _stream_holds_token(handle, needles, chunk_size, first=head):
            return f"contains a Hugging Face token{where}"
    for prefix, name in _UNREADABLE_COMPRESSIONS.items():
        if head.startswith(prefix):
            return None if depth else f"is {name}-compressed and cannot be scanned for tokens (upload it uncompressed)"
    compressed = next((name for prefix, name in _STREAM_COMPRESSIONS.items() if head.startswith(prefix)), None)
    kind = compressed or ("zip" if head.startswith(b"PK\x03\x04") else "tar" if head[257:262] == b"ustar" else None)
    if kind is None:
        return None
    if depth >= MAX_ARCHIVE_DEPTH:
        return f"nests archives deeper than {MAX_ARCHIVE_DEPTH}{where} and cannot be scanned for tokens"
    if compressed:
        return _scan_decompressed(open_stream, compressed, needles, secrets, chunk_size, depth, where)
    return _scan_members(open_stream, kind, needles, secrets, chunk_size, depth, where)


def _scan_decompressed(open_stream, name, needles, secrets, chunk_size, depth, where) -> str | None:
    import bz2
    import gzip
    import lzma

    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[name]

    @contextmanager
    def decompressed():
        with open_stream() as outer, opener(outer, "rb") as inner:
            yield inner

    errors = (OSError, EOFError, lzma.LZMAError)
    try:
        with decompressed() as stream:
            stream.read(1)
    except errors as error:  # no valid header: inside an archive these are data that only start like one
        return None if depth else f"looks {name}-compressed but cannot be decompressed to scan for tokens ({error})"
    try:
        return _scan(decompressed, needles, secrets, chunk_size, depth + 1, f"{where} ({name}-compressed)")
    except errors as error:  # a valid start that breaks later: what follows cannot be read, so cannot be cleared
        return f"holds a {name} stream{where} that breaks after its start and cannot be scanned for tokens ({error})"


def _scan_members(open_stream, kind, needles, secrets, chunk_size, depth, where) -> str | None:
    """A zip's or a tar's members, each scanned as a file of its own (its name too)."""
    import tarfile
    import zipfile

    with open_stream() as handle, tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as copy:
        if depth:  # a member or a decompressed stream: read once into a file that seeks, not re-decompressed per seek
            shutil.copyfileobj(handle, copy)
            copy.seek(0)
            handle = copy
        try:
            archive = zipfile.ZipFile(handle) if kind == "zip" else tarfile.open(fileobj=handle, mode="r:")
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
            return None if depth else f"looks like a {kind} archive but cannot be read to scan for tokens ({error})"
        with archive:
            members = archive.infolist() if kind == "zip" else [m for m in archive.getmembers() if m.isfile()]
            for member in members:
                name = member.filename if kind == "zip" else member.name
                if text_holds_token(name, secrets):
                    return f"contains a Hugging Face token (a {kind} member's name){where}"
                if kind == "zip" and member.flag_bits & 0x1:
                    return f"holds the encrypted zip member {name!r}{where}, which cannot be scanned for tokens"
                try:
                    found = _scan_member(archive, member, kind, needles, secrets, chunk_size, depth,
                                         f"{where} ({kind} member {name!r})")
                except (zipfile.BadZipFile, tarfile.TarError, NotImplementedError, OSError, EOFError) as error:
                    return f"holds the {kind} member {name!r}{where}, which cannot be read to scan for tokens ({error})"
                if found:
                    return found
    return None


def _scan_member(archive, member, kind, needles, secrets, chunk_size, depth, where) -> str | None:
    with tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as copy:
        with archive.open(member) if kind == "zip" else archive.extractfile(member) as source:
            shutil.copyfileobj(source, copy)

        @contextmanager
        def reread():
            copy.seek(0)
            yield copy

        return _scan(reread, needles, secrets, chunk_size, depth + 1, where)


def redact(text: str, token: str | None) -> str:
    """``text`` with the token replaced, for logs and error messages."""
    text = str(text)
    if token:
        text = text.replace(token, "<token>")
    return TOKEN_PATTERN.sub(b"hf_<redacted>", text.encode()).decode()
