"""Duplicate groups: normalization, planted exact and near duplicates, and evaluation sets from pairs."""

from __future__ import annotations

from datasets import Dataset

from hf_softnce.data import assign_duplicate_groups, normalize_code, retrieval_set_from_pairs

ORIGINAL = '''def mean(values):
    """Arithmetic mean of a list."""
    total = 0
    for value in values:
        total += value
    return total / len(values)
'''
# Same tokens: other layout, a comment, another docstring, indented as a method would be.
REFORMATTED = '''    def mean(values):
        # sum first
        total = 0
        for value in values:   total += value
        return total / len( values )
'''
DIFFERENT_LOGIC = ORIGINAL.replace("total / len(values)", "total * len(values)")


def long_function(constant: int) -> str:
    body = "\n".join(f"    result.append(step_{i}(items, {i}))" for i in range(30))
    return f"def pipeline(items):\n    result = []\n{body}\n    return result + [{constant}]\n"


def test_normalize_code_drops_layout_comments_and_docstrings_only():
    assert normalize_code(ORIGINAL) == normalize_code(REFORMATTED)
    assert normalize_code(ORIGINAL) == "def mean ( values ) : total = 0 for value in values : total += value return total / len ( values )"
    assert normalize_code(ORIGINAL) != normalize_code(DIFFERENT_LOGIC)
    # A string that is not a docstring is code and stays.
    assert '"kept"' in normalize_code('def f():\n    x = 1\n    "kept"\n    return x\n')
    assert "inner doc" not in normalize_code('def f():\n    def g():\n        """inner doc"""\n        return 1\n    return g\n')
    # Not Python (or truncated): whitespace collapsed, nothing lost.
    assert normalize_code("public int f() {\n  return 1; // one\n}", language="java") == "public int f() { return 1; // one }"


def test_planted_exact_and_near_duplicates_share_a_group():
    near = long_function(1).replace("step_7(items, 7)", "step_7(items, 70)")
    codes = [ORIGINAL, DIFFERENT_LOGIC, REFORMATTED, long_function(1), near, "def other():\n    return 42\n"]
    groups = assign_duplicate_groups(codes, threshold=0.8)
    assert groups == [0, 1, 0, 2, 2, 3]  # dense ids in order of first appearance
    # Exact only: the near duplicate gets its own group, the reformatted copy does not.
    assert assign_duplicate_groups(codes, threshold=None) == [0, 1, 0, 2, 3, 4]


def test_near_duplicate_grouping_is_transitive_and_threshold_bound():
    a = long_function(1)
    b = a.replace("step_3(items, 3)", "step_3(items, 33)")
    c = b.replace("step_20(items, 20)", "step_20(items, 200)")
    groups = assign_duplicate_groups([a, b, c], threshold=0.8)
    assert groups[0] == groups[1] == groups[2]
    # Very dissimilar code stays apart even at a low threshold.
    assert len(set(assign_duplicate_groups([a, ORIGINAL], threshold=0.3))) == 2


def test_retrieval_set_from_pairs_merges_identical_codes():
    pairs = Dataset.from_dict(
        {
            "query": ["mean of values", "average of a list", "some other thing"],
            "code": [ORIGINAL, ORIGINAL, DIFFERENT_LOGIC],
            "id": ["a", "b", "c"],
            "dup_group": [0, 0, 1],
        }
    )
    evaluation = retrieval_set_from_pairs(pairs, name="tiny")
    assert evaluation.name == "tiny"
    assert evaluation.queries == {"a": "mean of values", "b": "average of a list", "c": "some other thing"}
    assert evaluation.corpus == {"a": ORIGINAL, "c": DIFFERENT_LOGIC}
    assert evaluation.relevant == {"a": {"a"}, "b": {"a"}, "c": {"c"}}
    assert evaluation.groups == {"a": 0, "c": 1}
    assert evaluation.metadata["identical_codes_merged"] == 1


def test_retrieval_set_from_pairs_without_ids_or_groups():
    pairs = Dataset.from_dict({"query": ["q0", "q1"], "code": ["x = 1", "y = 2"]})
    evaluation = retrieval_set_from_pairs(pairs)
    assert evaluation.relevant == {"0": {"0"}, "1": {"1"}}
    assert evaluation.groups is None
