"""Make docstring pairs look like real code search: code as it sits in a repository, queries as people type them.

Measured on CoSQA (real web queries over 6,267 functions that all carry their docstrings), docstring-sentence
queries against docstring-free code pull all-MiniLM-L6-v2 *away* from real search. Two mismatches:

* the code side: every function in a real repository keeps its docstring; the corpus strips it (so the query
  cannot simply be read off the code). :func:`code_with_docstring` puts the docstring back, wholly or only the
  part the query was not taken from (``part="rest"``), so the model learns to use docstrings without learning
  to copy the query out of them;
* the query side: people type short, lower-case keyword queries ("python check file is readonly"), not
  sentences ("Return True if the file is read-only."). :func:`search_style_query` rewrites a docstring sentence
  that way, and adds CoCLR's query augmentation (Huang et al., ACL 2021: delete, copy or swap a word).

:func:`repository_style` applies both to a pairs dataset at chosen rates, deterministically from a seed.
"""

from __future__ import annotations

import ast
import random
import re

from hf_softnce.data.python_functions import first_paragraph

# Words a search-box query leaves out. Kept short on purpose: "not", "no", "if", "with" carry meaning.
_STOPWORDS = frozenset(
    "a an the this that these those given specified provided its it's their of".split()
)
# Leading docstring verbs and the words people type instead ("Return the ..." -> "get ...").
_LEADING_VERBS = {
    "return": "get", "returns": "get", "get": "get", "gets": "get", "retrieve": "get", "retrieves": "get",
    "compute": "calculate", "computes": "calculate", "calculate": "calculate", "calculates": "calculate",
    "check": "check", "checks": "check", "test": "check", "tests": "check", "determine": "check",
    "determines": "check", "create": "create", "creates": "create", "make": "make", "makes": "make",
    "convert": "convert", "converts": "convert", "read": "read", "reads": "read", "write": "write",
    "writes": "write", "remove": "remove", "removes": "remove", "delete": "delete", "deletes": "delete",
    "parse": "parse", "parses": "parse", "set": "set", "sets": "set", "find": "find", "finds": "find",
}
_ROLE = re.compile(r":[a-z]+:`~?([^`]*)`")  # Sphinx roles (:func:`os.path.join`) -> their target
_MARKUP = re.compile(r"[`*]+")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]'\"])[.!?](\s|$)")
_NON_WORD = re.compile(r"[^\w\s.\-']+")


def docstring_rest(docstring: str) -> str:
    """The docstring without its first paragraph (the part the corpus took its query from)."""
    parts = re.split(r"\n\s*\n", docstring.strip(), maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def code_with_docstring(code: str, docstring: str) -> str:
    """``code`` (a function whose docstring was removed) with ``docstring`` put back as its first statement.

    Returns ``code`` unchanged when ``docstring`` is empty or the function cannot be re-documented in place
    (it does not parse, or its body shares the ``def`` line).
    """
    if not docstring.strip():
        return code
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return code
    function = tree.body[0]
    first = function.body[0]
    lines = code.split("\n")
    if first.lineno == function.lineno:  # def f(): return 1
        return code
    indent = lines[first.lineno - 1][: first.col_offset]
    # Triple quotes inside the text would end the literal early; the model never executes it, so escape them.
    body = docstring.strip().replace('"""', '\\"\\"\\"').split("\n")
    literal = [indent + '"""' + body[0]] + [(indent + line) if line.strip() else "" for line in body[1:]]
    literal[-1] += '"""'
    return "\n".join(lines[: first.lineno - 1] + literal + lines[first.lineno - 1 :])


def search_style_query(text: str, rng: random.Random | None = None, *, max_words: int = 10,
                       augment_rate: float = 0.5) -> str:
    """A docstring sentence rewritten the way people type a code search.

    First sentence only, Sphinx/Markdown markup removed, lower case, no punctuation at the end, articles and
    filler words dropped, the leading docstring verb mapped to a search verb ("Return" -> "get"), at most
    ``max_words`` words. With ``rng``, CoCLR's augmentation is applied with probability ``augment_rate``
    (delete a random word, copy one, or swap two neighbours) and the language name is added at the start or
    end half of the time, as in web queries ("python ...", "... in python").
    """
    text = first_paragraph(text)
    text = _ROLE.sub(r"\1", text)
    text = _MARKUP.sub("", text)
    text = _SENTENCE_END.split(text, maxsplit=1)[0]
    words = [w.strip(".-'") for w in _NON_WORD.sub(" ", text.lower()).split()]
    words = [w for w in words if w and w not in _STOPWORDS]
    if words and words[0] in _LEADING_VERBS:
        words[0] = _LEADING_VERBS[words[0]]
        if words[0] == "get" and len(words) > 2 and words[1] in ("true", "false") and words[2] in ("if", "when"):
            words = ["check", *words[2:]]  # "Return True if x is empty" -> "check if x is empty"
    words = words[:max_words]
    if rng is not None and len(words) > 2 and rng.random() < augment_rate:
        i = rng.randrange(len(words))
        move = rng.choice(("delete", "copy", "swap"))
        if move == "delete":
            del words[i]
        elif move == "copy":
            words.insert(i, words[i])
        elif i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
    if rng is not None and rng.random() < 0.5:
        words = ["python", *words] if rng.random() < 0.5 else [*words, "python"]
    return " ".join(words) if words else text.strip()


def repository_style(dataset, *, docstring_rate: float = 0.0, docstring_part: str = "rest",
                     query_style_rate: float = 0.0, seed: int = 0):
    """Pairs with the docstring put back into ``docstring_rate`` of the codes and ``query_style_rate`` of the
    queries rewritten by :func:`search_style_query`. Needs a ``docstring`` column for the first.

    ``docstring_part``: ``"rest"`` (all but the paragraph the query came from) or ``"full"``.
    """
    for name, rate in (("docstring_rate", docstring_rate), ("query_style_rate", query_style_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {rate}.")
    if docstring_part not in ("rest", "full"):
        raise ValueError(f"docstring_part must be 'rest' or 'full', got {docstring_part!r}.")
    if docstring_rate > 0 and "docstring" not in dataset.column_names:
        raise ValueError(
            f"docstring_rate={docstring_rate} needs a 'docstring' column (build_python_corpus has one); "
            f"the dataset has {dataset.column_names}."
        )
    if docstring_rate == 0 and query_style_rate == 0:
        return dataset

    def rewrite(row, index):
        rng = random.Random(f"{seed}:{index}")
        if docstring_rate > 0 and rng.random() < docstring_rate:
            doc = row["docstring"] or ""
            row["code"] = code_with_docstring(row["code"], doc if docstring_part == "full" else docstring_rest(doc))
        if query_style_rate > 0 and rng.random() < query_style_rate:
            row["query"] = search_style_query(row["query"], rng)
        return row

    return dataset.map(rewrite, with_indices=True, desc="repository-style pairs")
