"""Duplicate groups: codes that are the same function up to formatting, or nearly the same, share an id.

Big code corpora are full of copies (vendored modules, copy-pasted helpers, py2/py3 twins). A copy of a
query's positive used as an in-batch negative is a false negative, so the losses and the miner mask
codes of the positive's ``dup_group``; the evaluator can count any member of the gold code's group as a
hit. Two levels:

* exact: equal after :func:`normalize_code` (comments, docstrings, whitespace and layout removed);
* near: Jaccard similarity of token n-gram sets at or above ``threshold``. Candidates come from
  datasketch's MinHash LSH; every candidate pair is then checked with the exact Jaccard of the sets, so
  LSH only decides which pairs are compared, never which are grouped.

Groups are transitive (union-find) and numbered densely in order of first appearance.
"""

from __future__ import annotations

import io
import textwrap
import tokenize
import zlib

from hf_softnce.data.schema import RetrievalSet, all_columns

# Token kinds that carry layout or commentary, not behaviour.
_LAYOUT_TOKENS = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def _is_docstring(line: list[tokenize.TokenInfo]) -> bool:
    """A logical line made only of plain (not bytes, not f-) string literals."""
    return bool(line) and all(
        token.type == tokenize.STRING and not set(token.string[: token.string.find(token.string[-1])].lower()) & set("bf")
        for token in line
    )


def _is_block_header(line: list[tokenize.TokenInfo]) -> bool:
    return bool(line) and line[0].string in ("def", "class", "async") and line[-1].string == ":"


def normalize_code(code: str, language: str = "python") -> str:
    """Code reduced to its tokens, separated by single spaces, without comments, docstrings or layout.

    Python is tokenized with ``tokenize``; a docstring is, as for ``ast``, a statement made only of a
    string literal that opens the module or a ``def``/``class`` body (found from the token stream, which
    avoids a second parse per function). Other languages, or Python that does not tokenize (a truncated
    snippet), fall back to collapsing whitespace.
    """
    if language != "python":
        return " ".join(code.split())
    text = textwrap.dedent(code.replace("\r\n", "\n").replace("\r", "\n"))
    kept: list[str] = []
    line: list[tokenize.TokenInfo] = []  # significant tokens of the current logical line
    body_start = True  # the module's first statement may be a docstring
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in _LAYOUT_TOKENS and token.type != tokenize.NEWLINE:
                continue
            if token.type == tokenize.NEWLINE:
                if not (body_start and _is_docstring(line)):
                    kept.extend(token.string for token in line)
                body_start = _is_block_header(line)
                line = []
            else:
                line.append(token)
    except (tokenize.TokenError, SyntaxError):
        return " ".join(text.split())
    if line and not (body_start and _is_docstring(line)):
        kept.extend(token.string for token in line)
    return " ".join(kept)


def _shingles(normalized: str, ngram: int) -> set[bytes]:
    tokens = normalized.encode("utf-8").split(b" ")
    if len(tokens) <= ngram:
        return {b" ".join(tokens)}
    # NUL cannot occur inside a token, so joined n-grams are unambiguous.
    return {b"\x00".join(tokens[i : i + ngram]) for i in range(len(tokens) - ngram + 1)}


def _crc32(data: bytes) -> int:
    # MinHash needs a fast, deterministic 32-bit hash of each shingle, not a cryptographic one
    # (datasketch's default sha1 dominated the grouping time); the permutations add the mixing.
    return zlib.crc32(data)


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            # The smaller index stays root, so group numbering follows first appearance.
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def check_similarity_threshold(threshold: float | None, name: str, *, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``threshold`` is a similarity in (0, 1] (``None`` where ``allow_none``: no near
    duplicates): NaN would compare false with every similarity and flag nothing, silently."""
    if threshold is None and allow_none:
        return
    if threshold is None or not 0.0 < threshold <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {threshold}.")


def assign_duplicate_groups(
    codes: list[str],
    threshold: float | None = 0.8,
    *,
    ngram: int = 3,
    num_perm: int = 128,
    language: str = "python",
    normalized: list[str] | None = None,
) -> list[int]:
    """A duplicate-group id per code: equal ids for exact (normalized) and near duplicates.

    Args:
        codes: the code strings.
        threshold: Jaccard similarity of token ``ngram`` sets from which two codes are near duplicates;
            ``None`` (or ``>= 1``) groups exact duplicates only.
        ngram: shingle length in tokens.
        num_perm: MinHash permutations (LSH recall/speed trade-off; grouping is verified exactly).
        language: ``"python"`` normalizes with ``tokenize``; others collapse whitespace.
        normalized: precomputed :func:`normalize_code` outputs, to skip normalizing again.

    Returns:
        ``groups[i]``: dense ids ``0..G-1``, numbered in order of first appearance.
    """
    if normalized is None:
        normalized = [normalize_code(code, language) for code in codes]
    sets = _UnionFind(len(normalized))
    first_index: dict[str, int] = {}
    for index, text in enumerate(normalized):
        if text in first_index:
            sets.union(first_index[text], index)
        else:
            first_index[text] = index

    if threshold is not None and threshold < 1 and len(first_index) > 1:
        from datasketch import MinHash, MinHashLSH  # imported here: normalize_code users need not pay for it

        representatives = list(first_index.values())
        shingles = [_shingles(normalized[index], ngram) for index in representatives]
        signatures = MinHash.bulk(shingles, num_perm=num_perm, hashfunc=_crc32)
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        for key, signature in enumerate(signatures):
            lsh.insert(key, signature, check_duplication=False)
        for key, signature in enumerate(signatures):
            for other in lsh.query(signature):
                if other <= key:
                    continue
                a, b = shingles[key], shingles[other]
                if len(a & b) >= threshold * len(a | b):
                    sets.union(representatives[key], representatives[other])

    numbering: dict[int, int] = {}
    return [numbering.setdefault(sets.find(index), len(numbering)) for index in range(len(normalized))]


def retrieval_set_from_pairs(
    dataset,
    name: str = "code-search",
    *,
    query_column: str = "query",
    code_column: str = "code",
    id_column: str = "id",
    group_column: str = "dup_group",
) -> RetrievalSet:
    """An evaluation set from (query, code) rows: each query searches all the split's codes.

    Query ids are the rows' ``id`` (row numbers when there is no id column). Rows whose code is
    *identical* share one corpus entry, keyed by the first such row's id, and that entry is the gold code
    of all of them: two identical documents would make the rank of the gold arbitrary. Near duplicates
    stay separate entries; ``groups`` (from the ``dup_group`` column when present) ties them together.
    """
    dataset = all_columns(dataset)
    columns = dataset.column_names
    queries_text, codes = dataset[query_column], dataset[code_column]
    ids = [str(value) for value in dataset[id_column]] if id_column in columns else [str(i) for i in range(len(codes))]
    row_groups = dataset[group_column] if group_column in columns else None
    queries, corpus, relevant, groups = {}, {}, {}, {}
    cid_of_code: dict[str, str] = {}
    for row, (qid, query, code) in enumerate(zip(ids, queries_text, codes)):
        if qid in queries:
            raise ValueError(f"retrieval_set_from_pairs({name!r}): duplicate id {qid!r} in column {id_column!r}.")
        cid = cid_of_code.setdefault(code, qid)
        if cid == qid:
            corpus[cid] = code
            if row_groups is not None:
                groups[cid] = row_groups[row]
        queries[qid] = query
        relevant[qid] = {cid}
    merged = len(queries) - len(corpus)
    return RetrievalSet(
        queries=queries,
        corpus=corpus,
        relevant=relevant,
        groups=groups if row_groups is not None else None,
        name=name,
        metadata={"identical_codes_merged": merged},
    )
