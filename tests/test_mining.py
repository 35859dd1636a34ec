"""RankingHardNegativeMiner: exclusion, exact ranks, seeded rank-decaying draws, margins, errors, cache, CLI.

Expected rankings are computed independently here with ``model.encode`` and a full torch score matrix.
"""

from __future__ import annotations

import argparse
import random

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset, load_from_disk
from scipy.stats import chisquare

from hf_softnce.data import all_columns
from hf_softnce.mining import RankingHardNegativeMiner
from hf_softnce.mining.eligibility import eligible_candidates
from hf_softnce.mining.sampling import sample_ranks
from hf_softnce.retrieval.search import faiss_available

WORDS = (
    "parse read write sort merge split join load save fetch send open close encode decode compress hash "
    "filter map reduce count find replace format render validate escape quote strip lower upper "
    "file json csv url path list dict string bytes socket thread queue cache token header config table"
).split()


def make_pairs(n: int, seed: int = 0, groups: list | None = None) -> Dataset:
    """Distinct (query, code) pairs from a word list; ``groups`` adds a dup_group column."""
    rng = random.Random(seed)
    queries, codes, seen = [], [], set()
    while len(queries) < n:
        words = rng.sample(WORDS, 4)
        if tuple(words) in seen:
            continue
        seen.add(tuple(words))
        queries.append(f"{words[0]} the {words[1]} and {words[2]} it into {words[3]}")
        codes.append(f"def {words[0]}_{words[1]}(x):\n    return {words[2]}({words[3]}(x))")
    data = {"query": queries, "code": codes, "id": [f"row-{i}" for i in range(n)]}
    if groups is not None:
        data["dup_group"] = groups
    return Dataset.from_dict(data)


def miner_for(model, **kwargs) -> RankingHardNegativeMiner:
    kwargs.setdefault("cache", False)
    kwargs.setdefault("show_progress_bar", False)
    return RankingHardNegativeMiner(model, **kwargs)


def score_matrix(model, queries, codes) -> torch.Tensor:
    q = F.normalize(model.encode(list(queries), batch_size=128, convert_to_tensor=True).float(), dim=-1)
    c = F.normalize(model.encode(list(codes), batch_size=128, convert_to_tensor=True).float(), dim=-1)
    return q @ c.T


def decay(top_k: int, temperature: float) -> torch.Tensor:
    """exp(-rank / temperature), written out here rather than taken from the code under test."""
    return torch.tensor([2.718281828459045 ** (-r / temperature) for r in range(top_k)], dtype=torch.float64)


def expected_eligible(scores_row, excluded: set[int], threshold: float = float("inf")) -> list[int]:
    order = torch.argsort(scores_row, descending=True).tolist()
    values = scores_row.tolist()
    return [j for j in order if j not in excluded and values[j] <= threshold]


def negatives_of(mined: Dataset, k: int) -> list[list[str]]:
    return [[row[f"negative_{j}"] for j in range(1, k + 1)] for row in mined]


# -- exclusion ---------------------------------------------------------------------------------------------


def planted_duplicates() -> Dataset:
    """Groups of three near-identical functions (the hardest negatives of each other) and repeated queries."""
    rows = {"query": [], "code": [], "dup_group": []}
    for g, words in enumerate(["sort list", "read file", "parse json", "send bytes", "hash string", "merge dict"]):
        a, b = words.split()
        for variant in range(3):
            rows["query"].append(f"{a} the {b} (request {variant})")
            rows["code"].append(f"def {a}_{b}(x):\n    return {a}({b}(x))  # copy {variant}")
            rows["dup_group"].append(f"group-{g}")
    # The same query paired with two unrelated codes: each is a positive, so neither may be a negative.
    rows["query"] += ["open the socket", "open the socket"]
    rows["code"] += ["def open_socket(h):\n    return socket(h)", "def connect(h):\n    return open(h)"]
    rows["dup_group"] += ["group-socket-a", "group-socket-b"]
    # An identical code text in two rows: one corpus entry.
    rows["query"] += ["quote the url"]
    rows["code"] += [rows["code"][0]]
    rows["dup_group"] += ["group-0"]
    return Dataset.from_dict(rows)


@pytest.mark.parametrize("strategy", ["window", "top", "probabilistic"])
def test_positive_and_its_duplicate_group_are_never_negatives(tiny_model, strategy):
    data = planted_duplicates()
    miner = miner_for(tiny_model, num_negatives=4, strategy=strategy, top_k=10, seed=1)
    mined = miner.mine(data, keep_identity_columns=True)
    assert len(mined) == len(data) and miner.last_report.skipped == 0
    group_codes: dict[str, set[str]] = {}
    for row in data:
        group_codes.setdefault(row["dup_group"], set()).add(row["code"])
    query_codes: dict[str, set[str]] = {}
    for row in data:
        query_codes.setdefault(row["query"], set()).add(row["code"])
    for row, negatives in zip(all_columns(mined), negatives_of(mined, 4)):  # dup_group: out of the rows
        forbidden = group_codes[row["dup_group"]] | query_codes[row["query"]]
        assert row["code"] not in negatives
        assert not forbidden & set(negatives), (row["query"], forbidden & set(negatives))
        assert len(set(negatives)) == 4


def test_planted_duplicates_are_hard_negatives_without_groups(tiny_model):
    """Control for the test above: without dup_group the planted copies do come back as negatives."""
    data = planted_duplicates().remove_columns("dup_group")
    mined = miner_for(tiny_model, num_negatives=4, strategy="top").mine(data)

    def function(code: str) -> str:  # a planted copy differs only in its trailing comment
        return code.rsplit("#", 1)[0]

    leaked = [
        row["query"]
        for row, negatives in zip(mined, negatives_of(mined, 4))
        if "# copy" in row["code"] and function(row["code"]) in {function(n) for n in negatives}
    ]
    assert len(leaked) >= 6, leaked


# -- window: exact ranks -----------------------------------------------------------------------------------


WITH_FAISS = pytest.param(True, marks=pytest.mark.skipif(not faiss_available(), reason="FAISS is not installed"))


@pytest.mark.parametrize("use_faiss", [False, WITH_FAISS])
def test_window_reproduces_the_independent_ranking(tiny_model, use_faiss):
    groups = [i // 2 if i < 10 else None for i in range(40)]  # five planted pairs, the rest ungrouped
    data = make_pairs(40, seed=3, groups=groups)
    start, k = 3, 4
    mined = miner_for(tiny_model, num_negatives=k, window_start=start, use_faiss=use_faiss).mine(
        data, output_scores=True
    )
    codes = list(data["code"])
    scores = score_matrix(tiny_model, data["query"], codes)
    for i, (row, negatives) in enumerate(zip(mined, negatives_of(mined, k))):
        excluded = {j for j in range(40) if j == i or (groups[i] is not None and groups[j] == groups[i])}
        eligible = expected_eligible(scores[i], excluded)
        window = eligible[start : start + k]
        gaps = scores[i][eligible[: start + k + 1]].diff().abs()
        assert gaps.min() > 1e-6, "near-tie in the reference ranking: pick other texts"
        assert negatives == [codes[j] for j in window]
        assert row["label"][0] == pytest.approx(scores[i, i].item(), abs=1e-5)
        assert row["label"][1:] == pytest.approx(scores[i][window].tolist(), abs=1e-5)


def test_window_fraction_is_floor_lambda_n(tiny_model):
    data = make_pairs(30, seed=4)
    by_fraction = miner_for(tiny_model, num_negatives=3, window_fraction=0.1).mine(data)  # floor(0.1 * 30) = 3
    by_start = miner_for(tiny_model, num_negatives=3, window_start=3).mine(data)
    by_zero = miner_for(tiny_model, num_negatives=3).mine(data)
    assert by_fraction.to_dict() == by_start.to_dict()
    assert by_fraction.to_dict() != by_zero.to_dict()


# -- probabilistic -----------------------------------------------------------------------------------------


def test_probabilistic_is_reproducible_with_a_seed(tiny_model):
    data = make_pairs(40, seed=5)
    kwargs = dict(num_negatives=3, strategy="probabilistic", top_k=15, temperature=5.0)
    first = miner_for(tiny_model, seed=7, **kwargs).mine(data)
    again = miner_for(tiny_model, seed=7, **kwargs).mine(data)
    other = miner_for(tiny_model, seed=8, **kwargs).mine(data)
    assert first.to_dict() == again.to_dict()
    assert negatives_of(first, 3) != negatives_of(other, 3)


def test_rank_draws_follow_the_exponential_decay():
    top_k, temperature, samples = 10, 3.0, 20_000
    found = torch.full((samples,), top_k)
    generator = torch.Generator().manual_seed(0)
    ranks, ok = sample_ranks(found, 0, 1, top_k, temperature, generator)
    assert ok.all()
    observed = torch.bincount(ranks[:, 0], minlength=top_k).double()
    expected = decay(top_k, temperature)
    assert chisquare(observed, samples * expected / expected.sum()).pvalue > 1e-3
    wrong = decay(top_k, 2 * temperature)  # the test has the power to reject another decay
    assert chisquare(observed, samples * wrong / wrong.sum()).pvalue < 1e-6


def test_two_draws_are_sequential_without_replacement():
    """P({a, b}) = p_a p_b (1/(1-p_a) + 1/(1-p_b)) for successive draws without replacement."""
    top_k, temperature, samples, start = 5, 2.0, 20_000, 4
    found = torch.full((samples,), start + top_k + 3)
    ranks, ok = sample_ranks(found, start, 2, top_k, temperature, torch.Generator().manual_seed(1))
    assert ok.all() and (ranks[:, 0] < ranks[:, 1]).all() and ranks.min() >= start
    p = decay(top_k, temperature)
    p = p / p.sum()
    pairs = [(a, b) for a in range(top_k) for b in range(a + 1, top_k)]
    expected = torch.tensor([p[a] * p[b] * (1 / (1 - p[a]) + 1 / (1 - p[b])) for a, b in pairs])
    counts = torch.zeros(len(pairs), dtype=torch.float64)
    index = {pair: i for i, pair in enumerate(pairs)}
    for a, b in (ranks - start).tolist():
        counts[index[(a, b)]] += 1
    assert chisquare(counts, samples * expected / expected.sum()).pvalue > 1e-3


def test_sampling_pool_is_cut_to_the_eligible_candidates():
    found = torch.tensor([2, 5, 1])
    ranks, ok = sample_ranks(found, 1, 2, 10, 1.0, torch.Generator().manual_seed(0))
    assert ok.tolist() == [False, True, False]  # pools of 1, 4 and 0 ranks after start=1
    assert set(ranks[1].tolist()) <= {1, 2, 3, 4}


def test_mined_probabilistic_ranks_follow_the_decay(tiny_model, tmp_path):
    """End to end: the rank (in the independent ranking) of each mined negative follows exp(-r/T).

    Fifteen seeds over 200 rows give 3,000 independent draws; the corpus is encoded once (cached).
    """
    n, top_k, temperature, seeds = 200, 6, 2.0, 15
    data = make_pairs(n, seed=6)
    scores = score_matrix(tiny_model, data["query"], data["code"])
    eligible = [expected_eligible(scores[i], {i}) for i in range(n)]
    position = {code: j for j, code in enumerate(data["code"])}
    observed = torch.zeros(top_k, dtype=torch.float64)
    for seed in range(seeds):
        miner = miner_for(tiny_model, num_negatives=1, strategy="probabilistic", top_k=top_k,
                          temperature=temperature, seed=seed, cache=str(tmp_path))
        for i, negative in enumerate(miner.mine(data)["negative_1"]):
            observed[eligible[i].index(position[negative])] += 1
    draws = n * seeds
    expected = decay(top_k, temperature)
    assert chisquare(observed, draws * expected / expected.sum()).pvalue > 1e-3
    slower = decay(top_k, 1.5 * temperature)
    assert chisquare(observed, draws * slower / slower.sum()).pvalue < 1e-6


# -- search backends ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not faiss_available(), reason="FAISS is not installed")
def test_faiss_and_torch_paths_mine_the_same_negatives(tiny_model):
    data = make_pairs(80, seed=8)
    torch_run = miner_for(tiny_model, num_negatives=10, strategy="top", use_faiss=False).mine(data, output_scores=True)
    faiss_run = miner_for(tiny_model, num_negatives=10, strategy="top", use_faiss=True).mine(data, output_scores=True)
    assert negatives_of(torch_run, 10) == negatives_of(faiss_run, 10)
    for a, b in zip(torch_run["label"], faiss_run["label"]):
        assert a == pytest.approx(b, abs=1e-5)


# -- margins -----------------------------------------------------------------------------------------------


def clear_margin(scores: torch.Tensor, positives: torch.Tensor, candidates: list[float], rule) -> float:
    """The first margin whose threshold stays clear of every score, so float rounding cannot flip a case."""
    for margin in candidates:
        thresholds = rule(positives, margin)
        if (scores - thresholds[:, None]).abs().min() > 1e-5:
            return margin
    raise AssertionError("no margin clear of the scores")


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_margins_drop_exactly_the_candidates_above_the_threshold(tiny_model, kind):
    n, k = 50, 3
    data = make_pairs(n, seed=9)
    ids, codes = list(data["id"]), list(data["code"])
    scores = score_matrix(tiny_model, data["query"], codes)
    positives = scores.diagonal()
    if kind == "absolute":
        rule = lambda pos, m: pos - m  # noqa: E731
    else:
        rule = lambda pos, m: pos - pos.abs() * m  # noqa: E731
    spread = (scores - positives[:, None]).abs().median().item()
    if kind == "relative":
        spread /= positives.abs().mean().item()
    margin = clear_margin(scores, positives, [spread * (0.3 + 0.005 * f) for f in range(60)], rule)
    miner = miner_for(tiny_model, num_negatives=k, strategy="top", **{f"{kind}_margin": margin})
    mined = miner.mine(data, keep_identity_columns=True)
    thresholds = rule(positives, margin)
    expected_rows, expected_negatives, dropped_any = [], [], False
    for i in range(n):
        eligible = expected_eligible(scores[i], {i}, thresholds[i].item())
        dropped_any |= len(eligible) < n - 1
        if len(eligible) >= k:
            expected_rows.append(ids[i])
            expected_negatives.append([codes[j] for j in eligible[:k]])
    assert dropped_any, "the margin must drop something for this test to mean anything"
    assert list(all_columns(mined)["id"]) == expected_rows
    assert negatives_of(mined, k) == expected_negatives
    assert miner.last_report.skipped == n - len(expected_rows)
    assert getattr(miner.last_report, f"dropped_by_{kind}_margin") > 0
    assert miner.last_report.max_search_depth > k + 1 + k  # the re-search path ran, and stayed exact


def test_relative_margin_keeps_its_direction_for_negative_positive_scores():
    indices = torch.tensor([[1, 2, 3]])
    scores = torch.tensor([[-0.52, -0.56, -0.4]])
    result = eligible_candidates(
        indices, scores, torch.arange(4), torch.tensor([[0]]), torch.tensor([-0.5]), relative_margin=0.1
    )
    # threshold = -0.5 - 0.5 * 0.1 = -0.55: -0.52 and -0.4 are too close to (or above) the positive.
    assert result.eligible.tolist() == [[False, True, False]]
    assert result.dropped_by_relative_margin.tolist() == [[True, False, True]]


def test_rows_with_a_large_duplicate_group_are_searched_deeper(tiny_model):
    """One row's group of planted copies outnumbers its first search depth; its negatives stay exact."""
    pairs = make_pairs(50, seed=17, groups=list(range(50)))
    codes = list(pairs["code"])
    # Row 0's query is its own code text, and the copies differ from that code only in (token-free) trailing
    # spaces: they are its 40 nearest neighbours, tied with the positive.
    data = pairs.map(lambda row, i: {"query": codes[0] if i == 0 else row["query"]}, with_indices=True)
    copies = [codes[0] + " " * i for i in range(1, 41)]
    corpus = {code: g for g, code in enumerate(codes)} | {copy: 0 for copy in copies}
    k = 3
    miner = miner_for(tiny_model, num_negatives=k, strategy="top")
    mined = miner.mine(data, corpus, output_scores=True)
    everything = codes + copies
    scores = score_matrix(tiny_model, data["query"], everything)
    excluded_for_row_0 = {0, *range(50, 90)}
    ranking_0 = torch.argsort(scores[0], descending=True).tolist()
    eligible_0 = expected_eligible(scores[0], excluded_for_row_0)
    assert ranking_0.index(eligible_0[k - 1]) >= 40 + k, "the copies must come first in row 0's ranking"
    assert miner.last_report.max_search_depth >= 40 + k  # re-searched deeper than the first guess
    assert negatives_of(mined, k)[0] == [everything[j] for j in eligible_0[:k]]
    for i, row in enumerate(mined):
        if i:  # other rows may meet the tied copies: compare scores, which ties do not blur
            expected = scores[i][expected_eligible(scores[i], {i})[:k]].tolist()
            assert row["label"][1:] == pytest.approx(expected, abs=1e-5)


# -- shortfall -----------------------------------------------------------------------------------------------


def test_rows_without_enough_negatives_are_counted_not_hidden(tiny_model):
    groups = [0] * 6 + [1, 2, 3, 4]  # rows 0-5 share a group: only 4 other codes are eligible for them
    data = make_pairs(10, seed=10, groups=groups)
    miner = miner_for(tiny_model, num_negatives=5)
    mined = miner.mine(data, keep_identity_columns=True)
    assert miner.last_report.skipped_rows == [0, 1, 2, 3, 4, 5]
    assert list(all_columns(mined)["id"]) == [f"row-{i}" for i in range(6, 10)]
    with pytest.raises(ValueError, match=r"Rows \[0, 1, 2, 3, 4, 5\] have too few eligible negatives"):
        miner_for(tiny_model, num_negatives=5, on_shortfall="error").mine(data)


# -- bad input -----------------------------------------------------------------------------------------------


def test_bad_input_gives_clear_errors(tiny_model):
    data = make_pairs(10, seed=11)
    with pytest.raises(ValueError, match="top_k=20 is larger than the corpus"):
        miner_for(tiny_model, num_negatives=2, strategy="probabilistic", top_k=20).mine(data)
    with pytest.raises(ValueError, match=r"Ranks \[5, 10\) need at least 10 negatives.*10 unique codes"):
        miner_for(tiny_model, num_negatives=5, window_start=5).mine(data)
    with pytest.raises(ValueError, match="corpus is empty"):
        miner_for(tiny_model, num_negatives=2).mine(data, corpus=[])
    with pytest.raises(ValueError, match="dataset is empty"):
        miner_for(tiny_model, num_negatives=2).mine(data.select([]))
    # A NaN margin compares false with every score and would drop nothing, silently.
    relative = r"relative_margin must lie in \[0, 1\), got"
    absolute = "absolute_margin must be a finite number >= 0, got"
    for margins, message in ((dict(relative_margin=float("nan")), f"{relative} nan"),
                             (dict(relative_margin=1.0), f"{relative} 1.0"),
                             (dict(absolute_margin=float("nan")), f"{absolute} nan"),
                             (dict(absolute_margin=-0.1), f"{absolute} -0.1")):
        with pytest.raises(ValueError, match=message):
            miner_for(tiny_model, num_negatives=2, **margins)
    no_positive = Dataset.from_dict({"query": ["sort a list", "read a file"], "code": ["def f(): pass", ""]})
    with pytest.raises(ValueError, match="Row 1 .* has no positive code"):
        miner_for(tiny_model, num_negatives=1).mine(no_positive)
    with pytest.raises(ValueError, match="Row 0: the positive code .* is not in the corpus"):
        miner_for(tiny_model, num_negatives=2).mine(data, corpus=list(data["code"])[1:])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['query', 'code'\]: it needs two text columns .* has "
                       r"\['query', 'id'\], of which \['id'\] are identity columns\."):
        miner_for(tiny_model, num_negatives=2).mine(data.remove_columns("code"))
    with pytest.raises(ValueError, match="two dup_group values"):
        grouped = data.add_column("dup_group", list(range(10)))
        miner_for(tiny_model, num_negatives=2).mine(grouped, corpus={c: f"other-{c}" for c in data["code"]})
    with pytest.raises(ValueError, match="strategy must be one of"):
        miner_for(tiny_model, strategy="random")
    with pytest.raises(ValueError, match="not both"):
        miner_for(tiny_model, window_start=2, window_fraction=0.1)


# -- corpus, outputs, cache, CLI -----------------------------------------------------------------------------


def test_external_corpus_with_groups_and_output_layout(tiny_model):
    data = make_pairs(12, seed=12).add_column("negative_1", ["stale"] * 12)
    extra = list(make_pairs(30, seed=13)["code"])
    corpus = {code: None for code in extra} | {code: f"g{i}" for i, code in enumerate(data["code"])}
    corpus[extra[0]] = "g0"  # a duplicate of row 0's positive that lives only in the corpus
    for output_format in ("n-tuple", "cross-encoder"):
        mined = miner_for(tiny_model, num_negatives=4).mine(
            data, corpus, output_format=output_format, output_scores=True, keep_identity_columns=True
        )
        assert mined.column_names == ["query", "code", *[f"negative_{j}" for j in range(1, 5)], "label", "id"]
        assert all(len(label) == 5 for label in mined["label"])
        assert "stale" not in set(sum(negatives_of(mined, 4), []))
        assert extra[0] not in negatives_of(mined, 4)[0]
    assert any(n in extra for n in sum(negatives_of(mined, 4), []))


def test_corpus_embeddings_are_reused_from_the_cache(tiny_model, tmp_path):
    data = make_pairs(20, seed=14)
    first = miner_for(tiny_model, num_negatives=3, cache=str(tmp_path)).mine(data)
    assert len(list(tmp_path.glob("*.pt"))) == 2  # corpus and queries

    encoded: list[list[str]] = []
    original = tiny_model.encode

    def counting_encode(texts, *args, **kwargs):
        encoded.append(list(texts))
        return original(texts, *args, **kwargs)

    tiny_model.encode = counting_encode
    again = miner_for(tiny_model, num_negatives=3, cache=str(tmp_path)).mine(data)
    assert encoded == [] and again.to_dict() == first.to_dict()

    bigger_corpus = list(data["code"]) + list(make_pairs(5, seed=15)["code"])
    miner_for(tiny_model, num_negatives=3, cache=str(tmp_path)).mine(data, bigger_corpus)
    assert encoded == [bigger_corpus]  # a new corpus is encoded; the queries still come from the cache


def test_mine_negatives_command(tiny_model, tmp_path):
    from hf_softnce.cli.mine_negatives import register

    model_dir, data_dir, out_dir = tmp_path / "model", tmp_path / "data", tmp_path / "out"
    tiny_model.save(str(model_dir))
    from datasets import DatasetDict

    DatasetDict({"train": make_pairs(15, seed=16)}).save_to_disk(str(data_dir))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["mine-negatives", "--model", str(model_dir), "--data", str(data_dir), "--output", str(out_dir),
         "--num-negatives", "3", "--strategy", "probabilistic", "--top-k", "6", "--output-scores", "--no-cache"]
    )
    assert args.func(args) == 0
    mined = load_from_disk(str(out_dir))
    assert len(mined) == 15 and mined.column_names[:6] == ["query", "code", "negative_1", "negative_2",
                                                          "negative_3", "label"]


# -- sentence-transformers' habits: any column names, trainer-ready output, its output formats --------------


def test_columns_by_position_with_any_names_mine_the_same_negatives(tiny_model):
    data = make_pairs(20, seed=21)
    reference = miner_for(tiny_model, num_negatives=3, strategy="top").mine(data, output_scores=True)
    renamed = data.rename_columns({"query": "anchor", "code": "positive"})
    mined = miner_for(tiny_model, num_negatives=3, strategy="top").mine(renamed, output_scores=True)
    # Identity columns dropped by default: the result is the model's input and nothing else.
    assert mined.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3", "label"]
    assert reference.column_names == ["query", "code", "negative_1", "negative_2", "negative_3", "label"]
    assert negatives_of(mined, 3) == negatives_of(reference, 3)
    assert mined["label"] == reference["label"]


def test_sentence_transformers_output_formats(tiny_model):
    data = make_pairs(12, seed=22)
    miner = miner_for(tiny_model, num_negatives=2, strategy="top")
    tuples = miner.mine(data, output_scores=True)
    negatives = negatives_of(tuples, 2)
    triplets = miner.mine(data, output_format="triplet", output_scores=True)
    assert triplets.column_names == ["query", "code", "negative", "scores"]
    assert triplets["negative"] == [n for row in negatives for n in row]
    assert triplets["scores"] == [[row[0], s] for row in tuples["label"] for s in row[1:]]
    pairs = miner.mine(data, output_format="labeled-pair")
    assert pairs.column_names == ["query", "code", "label"]
    assert pairs["label"] == [1, 0, 0] * 12
    assert pairs["code"][:3] == [data["code"][0], *negatives[0]]
    lists = miner.mine(data, output_format="labeled-list", output_scores=True)
    assert lists.column_names == ["query", "code", "scores"]
    assert lists["code"][5] == [data["code"][5], *negatives[5]]
    assert lists["scores"] == tuples["label"]
    with pytest.raises(ValueError, match="keep_identity_columns=True needs one row per query"):
        miner.mine(data, output_format="triplet", keep_identity_columns=True)


def test_mined_dataset_trains_as_is_in_both_trainers(tiny_model, tmp_path):
    """The README's ranker example: mine() output straight into CrossEncoderTrainer and SentenceTransformerTrainer."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hf_softnce.losses import R2PSRankerLoss
    from conftest import build_tiny_model, tiny_model_dir

    data = make_pairs(8, seed=23, groups=[f"g{i}" for i in range(8)]).rename_columns({"query": "anchor"})
    mined = miner_for(tiny_model, num_negatives=3).mine(data, output_scores=True)
    assert mined.column_names == ["anchor", "code", "negative_1", "negative_2", "negative_3", "label"]
    settings = dict(per_device_train_batch_size=4, max_steps=1, report_to=[], use_cpu=True, save_strategy="no")
    ranker = CrossEncoder(tiny_model_dir(), num_labels=1, device="cpu")
    before = [p.detach().clone() for p in ranker.parameters()]
    CrossEncoderTrainer(
        model=ranker,
        args=CrossEncoderTrainingArguments(output_dir=str(tmp_path / "ce"), **settings),
        train_dataset=mined,
        loss=R2PSRankerLoss(ranker, scale=20.0),
    ).train()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, ranker.parameters()))
    model = build_tiny_model()
    SentenceTransformerTrainer(
        model=model,
        args=SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "st"), **settings),
        train_dataset=mined.remove_columns("label"),
        loss=MultipleNegativesRankingLoss(model),
    ).train()
