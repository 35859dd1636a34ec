"""The R2PS ranker's negative sources (``ranker_negatives_from``), each checked against a direct re-computation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from datasets import Dataset
from sentence_transformers import SentenceTransformer

from hf_softnce.training.config import TrainConfig
from hf_softnce.training.ranker import RANKER_RELATIVE_MARGIN, add_random_negatives, mine_negatives, ranker_negatives

from test_ranker_cascade import DISTRACTORS, GOLD  # noqa: E402

CODES = GOLD + DISTRACTORS
# {code: duplicate group}: codes 0 and 1 stand for one function written twice, so neither is the other's negative.
CORPUS = {code: (0 if i < 2 else i) for i, code in enumerate(CODES)}
TRAIN = Dataset.from_dict({"query": ["read a json file", "reverse a string", "create a directory"],
                           "code": [CODES[0], CODES[4], CODES[7]]})


@pytest.fixture(scope="module")
def retriever(minilm_path):
    # The real all-MiniLM-L6-v2: a random tiny encoder scores every code alike, and the margin would leave nothing.
    return SentenceTransformer(minilm_path, device="cpu")


def config(kind: str) -> TrainConfig:
    return TrainConfig(ranker_negatives_from=kind, seed=7, mining_strategy="window")


def negatives(dataset: Dataset, k: int) -> list[list[str]]:
    return [[row[f"negative_{j}"] for j in range(1, k + 1)] for row in dataset]


def test_random_negatives_leave_out_the_positive_group_and_repeat_with_the_seed(retriever):
    first = negatives(ranker_negatives(config("random"), TRAIN, retriever, num_negatives=4, corpus=CORPUS), 4)
    again = negatives(ranker_negatives(config("random"), TRAIN, retriever, num_negatives=4, corpus=CORPUS), 4)
    other = negatives(ranker_negatives(replace(config("random"), seed=8), TRAIN, retriever, num_negatives=4,
                                       corpus=CORPUS), 4)
    assert first == again and first != other
    for row, picked in zip(TRAIN, first):
        assert len(set(picked)) == 4
        assert all(CORPUS[code] != CORPUS[row["code"]] for code in picked)  # code 1 is never code 0's negative


@pytest.mark.parametrize("window_start", [0, 1])
def test_positive_aware_top_is_the_best_code_below_95_percent_of_the_positive(retriever, window_start):
    mined = ranker_negatives(replace(config("positive-aware top"), ranker_negatives_start=window_start), TRAIN,
                             retriever, num_negatives=2, corpus=CORPUS)
    assert len(mined) == len(TRAIN)  # every row kept its negatives: the check below covers each
    embeddings = retriever.encode(CODES, normalize_embeddings=True)
    for row, picked in zip(TRAIN, negatives(mined, 2)):
        query = retriever.encode([row["query"]], normalize_embeddings=True)[0]
        scores = embeddings @ query
        positive = scores[CODES.index(row["code"])]
        eligible = [i for i in np.argsort(-scores) if CORPUS[CODES[i]] != CORPUS[row["code"]]
                    and scores[i] < positive * (1 - RANKER_RELATIVE_MARGIN)]
        assert picked == [CODES[i] for i in eligible[window_start:window_start + 2]]


def test_a_deeper_first_rank_is_refused_where_nothing_is_ranked():
    with pytest.raises(ValueError, match="'ranker_negatives_start' applies to ranker_negatives_from 'positive-aware "
                                         "top' or 'probabilistic', not 'random'"):
        replace(config("random"), ranker_negatives_start=10)


def test_retriever_top_is_the_configured_miner_and_mixed_is_its_aware_top_1_plus_random(retriever):
    top = ranker_negatives(config("retriever top"), TRAIN, retriever, num_negatives=3, corpus=CORPUS)
    direct = mine_negatives(config("retriever top"), TRAIN, retriever, num_negatives=3, corpus=CORPUS, progress=False)
    assert negatives(top, 3) == negatives(direct, 3)
    aware = ranker_negatives(config("positive-aware top"), TRAIN, retriever, num_negatives=1, corpus=CORPUS)
    mixed = ranker_negatives(config("mixed"), TRAIN, retriever, num_negatives=3, corpus=CORPUS)
    assert [row[0] for row in negatives(mixed, 3)] == [row[0] for row in negatives(aware, 1)]
    assert negatives(mixed, 3) == negatives(add_random_negatives(aware, CORPUS, range(2, 4), 7), 3)
    for picked in negatives(mixed, 3):
        assert len(set(picked)) == 3


def test_too_small_a_corpus_for_random_negatives_is_one_line_naming_the_row():
    tiny = {CODES[0]: 0, CODES[1]: 0, CODES[2]: 2}
    with pytest.raises(ValueError, match="Row 0: the corpus has fewer than 2 codes outside"):
        add_random_negatives(TRAIN.select([0]), tiny, range(1, 3), seed=0)


def test_unknown_source_is_refused_by_the_config():
    with pytest.raises(ValueError, match="ranker_negatives_from"):
        TrainConfig(ranker_negatives_from="hardest")


def test_random_negatives_leave_out_every_positive_of_the_same_query():
    # One query text with two positives (rows 0 and 1): a random negative of either is in neither's group.
    train = Dataset.from_dict({"query": ["q", "q"], "code": [CODES[0], CODES[4]]})
    mined = add_random_negatives(train, CORPUS, range(1, 6), seed=3)
    for picked in negatives(mined, 5):
        assert len(set(picked)) == 5
        assert {CORPUS[code] for code in picked}.isdisjoint({CORPUS[CODES[0]], CORPUS[CODES[4]]})
