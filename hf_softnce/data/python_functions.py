"""(docstring, function) pairs from one Python source file, the way CodeSearchNet built its corpus.

Only ``ast`` and ``tokenize`` read the file: nothing is imported or run. The rules:

* query = the first paragraph of the function's docstring, whitespace collapsed;
* code = the function's source from its ``def`` line (decorators excluded), dedented, docstring removed;
* docstring = the whole docstring (``ast.get_docstring``, cleaned), kept beside the pair so training can put
  it back, wholly or partly, as code sits in a repository (:mod:`hf_softnce.data.augment`);
* dropped and counted: no docstring, a query of fewer than ``min_query_words`` words, test functions
  (``test*`` names, methods of ``Test*`` classes), trivial bodies (only ``pass``, ``...`` or
  ``raise NotImplementedError``) and code longer than ``max_code_lines`` lines.

Functions nested inside other functions are not separate pairs: their source is part of the enclosing
function's code.
"""

from __future__ import annotations

import ast
import io
import os
import re
import stat
import tokenize
import warnings
from dataclasses import dataclass

from hf_softnce.data.report import SkipReport, location

LANGUAGE = "python"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class ExtractionOptions:
    """The rules of :func:`extract_file` (part of the corpus cache key)."""

    min_query_words: int = 3
    max_code_lines: int = 100
    errors: str = "skip"


@dataclass(frozen=True)
class SourceFile:
    """One file to mine: where it is, and the identity its functions get."""

    abs_path: str
    rel_path: str  # posix path relative to the source root; the ``path`` column
    package: str  # the split unit: distribution name, or top-level module/package
    license: str | None = None


def first_paragraph(docstring: str) -> str:
    """The docstring's first paragraph on one line: CodeSearchNet's query."""
    return " ".join(_PARAGRAPH_BREAK.split(docstring.strip(), maxsplit=1)[0].split())


def is_test_function(name: str, class_names: list[str]) -> bool:
    if name == "test" or name.startswith("test_") or (name.startswith("test") and name[4:5].isupper()):
        return True
    return any(cls.startswith("Test") or cls.endswith(("Tests", "TestCase")) for cls in class_names)


def is_trivial_body(body: list[ast.stmt]) -> bool:
    """True when a body (docstring already removed) does nothing: pass, ``...``, raise NotImplementedError."""

    def trivial(stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.Pass):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis:
            return True
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
        return False

    return all(trivial(stmt) for stmt in body)


def decode_source(data: bytes) -> str:
    """Decode as Python does (PEP 263 coding cookie, UTF-8 default) and normalize newlines to ``\\n``.

    ast counts only \\n, \\r\\n and \\r as line breaks, so normalizing first keeps ``str.split("\\n")`` in
    step with its line numbers (``splitlines`` would also split on form feeds, which the stdlib contains).
    """
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _byte_col_to_char(line: str, col: int) -> int:
    # ast column offsets count UTF-8 bytes, not characters.
    return len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def function_code_without_docstring(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The function's source (``def`` line to last statement), dedented, with its docstring removed."""
    start, end = node.lineno, node.end_lineno
    segment = lines[start - 1 : end]
    # Cut what follows the last statement on its line ("; other_statement"), but keep a trailing comment.
    last = segment[-1]
    cut = _byte_col_to_char(last, node.end_col_offset)
    if not last[cut:].lstrip().startswith("#"):
        segment[-1] = last[:cut]
    doc = node.body[0]
    doc_first, doc_last = doc.lineno - start, doc.end_lineno - start
    head = segment[doc_first][: _byte_col_to_char(segment[doc_first], doc.col_offset)]
    tail = segment[doc_last][_byte_col_to_char(segment[doc_last], doc.end_col_offset) :]
    if head.strip() or tail.strip():
        # The docstring shares a line with code (``def f(): "doc"; return 1``): cut just the string
        # and the ";" that separated it from the next statement.
        tail = re.sub(r"^\s*;\s*", "", tail)
        segment[doc_first : doc_last + 1] = [(head + tail) if (head + tail).strip() else ""]
    else:
        del segment[doc_first : doc_last + 1]
    indent = re.match(r"[ \t]*", segment[0]).group(0)
    # Lines inside multi-line strings may lack the indentation: leave those untouched.
    dedented = [line[len(indent) :] if line.startswith(indent) else line for line in segment]
    return "\n".join(line.rstrip() for line in dedented).strip("\n")


def _functions(tree: ast.Module):
    """Yield (node, enclosing class names) for module-level functions and methods, not nested functions."""
    stack = [(tree, [])]
    while stack:
        node, classes = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield child, classes
            elif isinstance(child, ast.ClassDef):
                stack.append((child, [*classes, child.name]))
            elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                # Functions defined under if/try/with at module or class level still count.
                stack.append((child, classes))


def extract_functions(text: str, source: SourceFile, options: ExtractionOptions, report: SkipReport) -> list[dict]:
    """Pairs from already-decoded source text; raises SyntaxError/ValueError when it does not parse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences etc. in third-party code
        tree = ast.parse(text, filename=source.abs_path)
    lines = text.split("\n")
    rows = []
    for node, classes in sorted(_functions(tree), key=lambda item: item[0].lineno):
        qualname = ".".join([*classes, node.name])
        where = location(source.abs_path, node.lineno)
        docstring = ast.get_docstring(node)
        if docstring is None:
            report.filter("no docstring")
            continue
        query = first_paragraph(docstring)
        if len(query.split()) < options.min_query_words:
            report.filter(f"docstring shorter than {options.min_query_words} words", where)
            continue
        if is_test_function(node.name, classes):
            report.filter("test function", where)
            continue
        if is_trivial_body(node.body[1:]):
            report.filter("trivial body (pass / ... / raise NotImplementedError)", where)
            continue
        code = function_code_without_docstring(lines, node)
        if code.count("\n") + 1 > options.max_code_lines:
            report.filter(f"longer than {options.max_code_lines} lines", where)
            continue
        rows.append(
            {
                "query": query,
                "code": code,
                "docstring": docstring,
                "id": f"{source.package}:{source.rel_path}:{node.lineno}:{qualname}",
                "package": source.package,
                "path": source.rel_path,
                "func_name": qualname,
                "line": node.lineno,
                "language": LANGUAGE,
                "license": source.license,
            }
        )
    return rows


def extract_file(source: SourceFile, options: ExtractionOptions) -> tuple[list[dict], SkipReport]:
    """Read, decode and parse one file. Bad files raise :class:`DataFormatError` or are counted as skipped.

    A module-level function (not a method) so that process pools can pickle it.
    """
    report = SkipReport()
    try:
        data = read_regular_file(source.abs_path)
    except NotARegularFileError as error:
        report.bad_input(options.errors, "not a regular file", source.abs_path, str(error))
        return [], report
    except OSError as error:
        report.bad_input(options.errors, "unreadable source file", source.abs_path, str(error))
        return [], report
    try:
        text = decode_source(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as error:
        # detect_encoding raises SyntaxError for a bad coding cookie; LookupError for an unknown codec.
        line = _unicode_error_line(data, error)
        report.bad_input(options.errors, "source file is not valid text in its declared encoding",
                         location(source.abs_path, line), str(error))
        return [], report
    try:
        rows = extract_functions(text, source, options, report)
    except SyntaxError as error:
        report.bad_input(options.errors, "unparsable Python source", location(source.abs_path, error.lineno),
                         f"SyntaxError: {error.msg}")
        return [], report
    except (ValueError, RecursionError) as error:  # null bytes; absurdly deep nesting
        report.bad_input(options.errors, "unparsable Python source", source.abs_path, repr(error))
        return [], report
    return rows, report


class NotARegularFileError(OSError):
    """A path that names a FIFO, socket or device rather than a file."""


def read_regular_file(path) -> bytes:
    """The bytes of ``path`` if it is a regular file (symlinks followed); anything else is refused.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor: a plain ``open()`` of a
    FIFO waits for a writer forever, and checking the path before opening it would race with a swap.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or directory"
            raise NotARegularFileError(kind)
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with handle:
        return handle.read()


def _unicode_error_line(data: bytes, error: Exception) -> int | None:
    if isinstance(error, UnicodeDecodeError):
        return data[: error.start].count(b"\n") + 1
    return getattr(error, "lineno", None)


def strip_docstring(code: str) -> str | None:
    """A single function's source with its docstring removed (``None`` when it does not parse as one).

    Used for published datasets whose raw ``code`` still contains the docstring the query came from.
    """
    import textwrap

    text = textwrap.dedent(code.replace("\r\n", "\n").replace("\r", "\n"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    functions = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(functions) != 1:
        return None
    if ast.get_docstring(functions[0], clean=False) is None:
        return text.strip("\n")
    return function_code_without_docstring(text.split("\n"), functions[0])
