"""The model-based relevance estimators against direct computation with their frozen encoders."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import build_tiny_model

from hf_softnce.losses import SoftInfoNCELoss
from hf_softnce.weighting import BM25Weighter, EmbeddingWeighter, TrainedModelWeighter
from loss_helpers import CODES, NEGATIVES, QUERIES, features


def batch_of(loss, model, *columns, labels=None):
    feats = features(model, *columns)
    with torch.no_grad():
        embeddings = [model(f)["sentence_embedding"] for f in feats]
    return loss.candidate_batch(embeddings, loss.column_hashes(feats), labels)[1]


def cosine(a, b):
    a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    return a @ b.T


def test_embedding_weighter_is_query_query_cosine_and_caches(tmp_path, tiny_model):
    encoder = build_tiny_model(seed=1)
    queries = list(QUERIES)
    queries[4] = queries[0]  # two rows share a docstring: each is the other's most relevant candidate
    calls = []
    original_encode = encoder.encode
    encoder.encode = lambda *a, **k: calls.append(len(a[0])) or original_encode(*a, **k)
    weighter = EmbeddingWeighter(encoder, cache=tmp_path, show_progress_bar=False).fit(queries, CODES, negatives=NEGATIVES)
    loss = SoftInfoNCELoss(tiny_model, weighter)
    relevance = weighter.relevance(batch_of(loss, tiny_model, queries, CODES, NEGATIVES))

    query_embeddings = original_encode(queries, convert_to_tensor=True)
    negative_embeddings = original_encode(NEGATIVES, convert_to_tensor=True)
    b = len(queries)
    # In-batch positives are scored through their docstrings; unpaired negatives through their own text.
    torch.testing.assert_close(relevance[:, :b], cosine(query_embeddings, query_embeddings), atol=1e-5, rtol=0)
    torch.testing.assert_close(relevance[:, b:], cosine(query_embeddings, negative_embeddings), atol=1e-5, rtol=0)
    assert relevance[0, 4] == pytest.approx(1.0, abs=1e-5) and relevance[0, 4] == relevance[0, 1:b].max()

    encoded_before = len(calls)
    EmbeddingWeighter(encoder, cache=tmp_path, show_progress_bar=False).fit(queries, CODES, negatives=NEGATIVES)
    assert encoded_before == 2 and len(calls) == encoded_before  # the second fit read the disk cache


def test_trained_model_weighter_scores_query_against_code(tmp_path, tiny_model):
    retriever = build_tiny_model(seed=2)
    weighter = TrainedModelWeighter(retriever, cache=tmp_path, show_progress_bar=False).fit(QUERIES, CODES)
    loss = SoftInfoNCELoss(tiny_model, weighter)
    relevance = weighter.relevance(batch_of(loss, tiny_model, QUERIES, CODES))
    expected = 20.0 * cosine(retriever.encode(QUERIES, convert_to_tensor=True), retriever.encode(CODES, convert_to_tensor=True))
    torch.testing.assert_close(relevance, expected, atol=1e-4, rtol=0)
    assert not any(p.requires_grad for p in retriever.parameters())


def test_trained_model_weighter_refuses_to_share_parameters_with_the_trained_model(tmp_path, tiny_model):
    weighter = TrainedModelWeighter(tiny_model, cache=tmp_path, show_progress_bar=False).fit(QUERIES, CODES)
    with pytest.raises(ValueError, match="shares parameters"):
        SoftInfoNCELoss(tiny_model, weighter)
    # A separate copy with equal weights is fine: it is frozen and never updated by training.
    SoftInfoNCELoss(build_tiny_model(seed=0), weighter)


# The released BM25 (Soft-InfoNCE, CodeBERT/run_siamese_test.py: score_BM25 / compute_K and the `if args.bm25:`
# block of train), copied with its constants, to re-compute BM25Weighter(idf="batch") independently.
k1, k2, b, R = 1.2, 100, 0.75, 0.0


def score_BM25(n, f, qf, r, N, dl, avdl):
    K = compute_K(dl, avdl)
    first = math.log(((r + 0.5) / (R - r + 0.5)) / ((n - r + 0.5) / (N - n - R + r + 0.5)))
    second = ((k1 + 1) * f) / (K + f)
    third = ((k2 + 1) * qf) / (k2 + qf)
    return first * second * third


def compute_K(dl, avdl):
    return k1 * ((1 - b) + b * (float(dl) / float(avdl)))


def released_sim_matrix(nl_inputs, avg_len, is_term):
    dict1 = dict()
    for docidx, tokens in enumerate(nl_inputs):
        for i in tokens:
            if is_term(i):
                dict1.setdefault(i, {}).setdefault(docidx, 0)
                dict1[i][docidx] += 1
    sim_matrix = torch.zeros((len(nl_inputs), len(nl_inputs)), dtype=torch.float64)
    for i, query in enumerate(nl_inputs):
        for token in query:
            if is_term(token):
                doc_dict = dict1[token]
                for docid, freq in doc_dict.items():
                    dl = sum(1 for t in nl_inputs[docid] if is_term(t))
                    score = score_BM25(n=len(doc_dict), f=freq, qf=1, r=0, N=len(nl_inputs), dl=dl, avdl=avg_len)
                    sim_matrix[i][docid] += score
    return sim_matrix


BM25_QUERIES = [
    "read a gzip file and read its lines",
    "decompress gzip data in memory",
    "compute the mean of a list",
    "sort a list of numbers",
    "read a json file",
    "write a list to a csv file",
    "parse a date string",
    "count the lines of a file",
]


def test_bm25_batch_idf_is_the_released_score_bm25(tiny_model):
    codes = [f"def f{i}(): pass" for i in range(8)]
    training_queries = BM25_QUERIES + ["an extra training query that is not in the batch"]
    weighter = BM25Weighter(idf="batch").fit(training_queries, codes + ["def extra(): pass"])
    loss = SoftInfoNCELoss(tiny_model, weighter)
    relevance = weighter.relevance(batch_of(loss, tiny_model, BM25_QUERIES, codes))

    features = tiny_model.preprocess(BM25_QUERIES)
    nl_inputs = [ids[mask.bool()].tolist() for ids, mask in zip(features["input_ids"], features["attention_mask"])]
    special = set(tiny_model.tokenizer.all_special_ids)  # the released `token > 3` is RoBERTa's 4 specials
    training_mask = tiny_model.preprocess(training_queries)["attention_mask"]
    avg_len = training_mask.sum().item() / len(training_queries)  # released TextDataset.avg_len
    expected = released_sim_matrix(nl_inputs, avg_len, lambda token: token not in special)
    torch.testing.assert_close(relevance.double(), expected, atol=1e-5, rtol=1e-5)
    assert (expected < 0).any()  # signed: "a" is in more than half of the batch
    assert weighter.signed and weighter.get_config_dict()["idf"] == "batch"

    # Corpus IDF is another scale (non-negative +1 IDF over the training queries, regex words).
    corpus = BM25Weighter().fit(training_queries, codes + ["def extra(): pass"])
    corpus_relevance = corpus.relevance(batch_of(SoftInfoNCELoss(tiny_model, corpus), tiny_model, BM25_QUERIES, codes))
    assert (corpus_relevance >= 0).all() and not torch.allclose(corpus_relevance.double(), expected, atol=1e-2)
    with pytest.raises(ValueError, match="idf must be 'corpus' or 'batch'"):
        BM25Weighter(idf="global")


@pytest.mark.parametrize("make", [lambda: BM25Weighter(), lambda: BM25Weighter(idf="batch"),
                                  lambda: EmbeddingWeighter(build_tiny_model(seed=1), cache=False,
                                                            show_progress_bar=False)],
                         ids=["bm25-corpus", "bm25-batch", "embedding"])
def test_a_code_answering_several_queries_is_scored_through_its_own_rows_query(tiny_model, make):
    """CoSQA pairs most codes with several queries: in a batch, a positive is scored through the query of its own
    row, so the weights do not depend on which query came first in the training data; the relevance equals that of
    a batch whose codes are all distinct (each then has one docstring: its own row's query)."""
    queries, codes = list(QUERIES), list(CODES)
    other = "read the text of a file into a string"
    unique_codes = [f"def unique_{i}(): pass" for i in range(len(codes))]
    relevance = {}
    for order in ("other first", "own first"):
        pairs = [(other, codes[1]), *zip(queries, codes)] if order == "other first" else [*zip(queries, codes),
                                                                                          (other, codes[1])]
        weighter = make().fit([q for q, _ in pairs], [c for _, c in pairs], negatives=NEGATIVES)
        loss = SoftInfoNCELoss(tiny_model, weighter)
        relevance[order] = weighter.relevance(batch_of(loss, tiny_model, queries, codes, NEGATIVES))
    torch.testing.assert_close(relevance["other first"], relevance["own first"], atol=1e-6, rtol=0)
    distinct = make().fit([*queries, other], [*unique_codes, codes[1]], negatives=NEGATIVES)
    expected = distinct.relevance(batch_of(SoftInfoNCELoss(tiny_model, distinct), tiny_model, queries, unique_codes,
                                           NEGATIVES))
    b = len(queries)
    torch.testing.assert_close(relevance["other first"][:, :b], expected[:, :b], atol=1e-6, rtol=0)
