"""SoftInfoNCELoss against MultipleNegativesRankingLoss and against direct re-computations of its formulas."""

from __future__ import annotations

import math

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from hf_softnce.losses import CachedSoftInfoNCELoss, SoftInfoNCELoss, soft_negative_weights
from hf_softnce.losses.soft_infonce_baselines import relevance_distribution, top_k_removed
from hf_softnce.weighting import BM25Weighter, PrecomputedWeighter, UniformWeighter
from loss_helpers import (
    CODES, NEGATIVES, QUERIES, assert_same_gradients, features, gradients, loss_and_gradients,
)


@pytest.fixture
def model(tiny_model):
    tiny_model.eval()  # no dropout, so two losses see identical embeddings
    return tiny_model


@pytest.mark.parametrize("with_negatives", [False, True])
@pytest.mark.parametrize("weighter", [None, "uniform"])
def test_uniform_weights_equal_mnrl_value_and_gradients(model, with_negatives, weighter):
    columns = [QUERIES, CODES, NEGATIVES] if with_negatives else [QUERIES, CODES]
    feats = features(model, *columns)
    ours = SoftInfoNCELoss(model, UniformWeighter() if weighter else None)
    reference_value, reference_grads = loss_and_gradients(model, MultipleNegativesRankingLoss(model), feats)
    value, grads = loss_and_gradients(model, ours, feats)
    assert abs(value.item() - reference_value.item()) < 1e-6
    assert_same_gradients(grads, reference_grads)


def test_uniform_path_through_the_weight_formula_equals_mnrl(model):
    """Constant relevance sent through the weight formula (not the fast path) gives w = 1 and MNRL."""
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = torch.full((len(QUERIES), 2), 0.5)
    ours = SoftInfoNCELoss(model, PrecomputedWeighter())
    reference_value, reference_grads = loss_and_gradients(model, MultipleNegativesRankingLoss(model), feats)
    value, grads = loss_and_gradients(model, ours, feats, labels)
    assert abs(value.item() - reference_value.item()) < 1e-6
    assert_same_gradients(grads, reference_grads)


def direct_weights(relevance_row, alpha, beta, t, min_weight):
    exps = [math.exp(r / t) for r in relevance_row]
    p = [e / sum(exps) for e in exps]
    n = len(relevance_row)
    return [max(min_weight, (beta - alpha * pj) / (beta - alpha / n)) for pj in p]


def test_weight_formula_matches_direct_recomputation():
    torch.manual_seed(0)
    relevance = torch.rand(4, 7) * 3
    mask = torch.ones(4, 7, dtype=torch.bool)
    mask[torch.arange(4), torch.arange(4)] = False  # each row's own positive
    mask[0, 5] = False  # a removed duplicate
    weights = soft_negative_weights(relevance, mask, alpha=1.5, beta=0.5, temperature=1.0, min_weight=0.1)
    for i in range(4):
        columns = mask[i].nonzero().flatten().tolist()
        expected = direct_weights([relevance[i, j].item() for j in columns], 1.5, 0.5, 1.0, 0.1)
        assert weights[i, columns].tolist() == pytest.approx(expected, abs=1e-6)
        assert weights[i, ~mask[i]].abs().sum() == 0


def test_unclipped_weights_sum_to_number_of_negatives_and_clipping_bites():
    torch.manual_seed(1)
    relevance = torch.randn(5, 9)
    mask = torch.rand(5, 9) > 0.2
    unclipped = soft_negative_weights(relevance, mask, 1.3, 0.7, 1.0, min_weight=-1e9)
    torch.testing.assert_close(unclipped.sum(dim=1), mask.sum(dim=1).float(), atol=1e-5, rtol=0)
    peaked = soft_negative_weights(relevance, mask, 1.3, 0.7, 0.01, min_weight=0.1)
    assert peaked[mask].min().item() == pytest.approx(0.1)  # the most relevant negative is clipped
    assert (soft_negative_weights(relevance, mask, 1.3, 0.7, 0.01, min_weight=-1e9)[mask] < 0.1).any()


def test_no_gradient_flows_through_weights():
    relevance = torch.rand(3, 5, requires_grad=True)
    mask = torch.ones(3, 5, dtype=torch.bool)
    assert not soft_negative_weights(relevance, mask, 1.5, 0.5, 1.0).requires_grad


def test_loss_value_matches_direct_formula_with_precomputed_relevance(model):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = torch.tensor([[0.9, 0.1 * (i + 1)] for i in range(len(QUERIES))])
    loss = SoftInfoNCELoss(model, PrecomputedWeighter(), alpha=1.3, beta=0.7, weight_temperature=0.1)
    value = loss(feats, labels).item()

    with torch.no_grad():
        q, c, n = (model(f)["sentence_embedding"] for f in feats)
    candidates = torch.cat([c, n])
    scores = 20.0 * torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(candidates, dim=1).T
    b = len(QUERIES)
    total = 0.0
    for i in range(b):
        negatives = [j for j in range(2 * b) if j != i]
        # Own hard negative gets its label; every other candidate the batch's lowest hard-negative score.
        relevance = [labels[i, 1].item() if j == b + i else labels[:, 1].min().item() for j in negatives]
        w = direct_weights(relevance, 1.3, 0.7, 0.1, 0.1)
        denominator = math.exp(scores[i, i]) + sum(wj * math.exp(scores[i, j]) for wj, j in zip(w, negatives))
        total += -math.log(math.exp(scores[i, i]) / denominator)
    assert value == pytest.approx(total / b, abs=1e-5)


def direct_scores(model, feats, grad: bool = False):
    """``20 * cos(query_i, candidate_j)``, candidates laid out column by column (positives, then negatives)."""
    with torch.set_grad_enabled(grad):
        q, *columns = (model(f)["sentence_embedding"] for f in feats)
    candidates = torch.cat(columns)
    return 20.0 * torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(candidates, dim=1).T


def direct_infonce_over(scores, kept):
    """InfoNCE of row i over its positive (candidate i) and the candidates ``kept[i]``: MNRL over what remains."""
    rows = []
    for i in range(scores.shape[0]):
        columns = [i] + [j for j in range(scores.shape[1]) if kept[i][j] and j != i]
        rows.append(torch.logsumexp(scores[i, columns], dim=0) - scores[i, i])
    return torch.stack(rows).mean()


def test_relevant_negative_is_pushed_less(model):
    """Value and parameter gradients equal the weighted InfoNCE written out, and in that re-computation the
    gradient on the relevant negative's score is the clipped weight (0.1) times the unweighted one."""
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = torch.zeros(len(QUERIES), 2)
    labels[0, 1] = 5.0  # row 0's hard negative looks very relevant
    b = len(QUERIES)
    value, grads = loss_and_gradients(model, SoftInfoNCELoss(model, PrecomputedWeighter()), feats, labels)

    model.zero_grad(set_to_none=True)
    scores = direct_scores(model, feats, grad=True)
    log_weights = torch.zeros(b, 2 * b)
    for i in range(b):
        negatives = [j for j in range(2 * b) if j != i]
        relevance = [labels[i, 1].item() if j == b + i else 0.0 for j in negatives]  # others: the batch minimum
        log_weights[i, negatives] = torch.log(torch.tensor(direct_weights(relevance, 1.3, 0.7, 0.1, 0.1)))
    expected = (torch.logsumexp(scores + log_weights, dim=1) - scores.diag()).mean()
    expected.backward()
    assert value.item() == pytest.approx(expected.item(), abs=1e-5)
    assert_same_gradients(grads, gradients(model), atol=1e-5)

    # d loss / d s_0j = w_0j e^{s_0j} / Z_0 / b: the relevant negative's weight is clipped to 0.1.
    detached = scores.detach().requires_grad_(True)
    (torch.logsumexp(detached + log_weights, dim=1) - detached.diag()).mean().backward()
    assert log_weights[0, b].exp().item() == pytest.approx(0.1, abs=1e-6)
    weighted_row = torch.softmax(detached.detach()[0] + log_weights[0], dim=0) / b
    assert detached.grad[0, b].item() == pytest.approx(weighted_row[b].item(), rel=1e-4)
    assert detached.grad[0, b].item() < torch.softmax(detached.detach()[0], dim=0)[b].item() / b


def test_duplicates_of_the_positive_are_removed_not_downweighted(model):
    codes = list(CODES)
    codes[3] = codes[0]  # row 3's code is identical to row 0's
    near_duplicate = codes[1].replace("text", "value")
    negatives = list(NEGATIVES)
    negatives[2] = near_duplicate  # row 2's negative is a near-duplicate of row 1's positive
    groups = {code: f"g{i}" for i, code in enumerate(CODES)} | {near_duplicate: "g1"}
    loss = SoftInfoNCELoss(model, duplicate_groups=groups)
    feats = features(model, QUERIES, codes, negatives)
    _, batch = loss.candidate_batch([model(f)["sentence_embedding"] for f in feats], loss.column_hashes(feats), None)
    b = len(QUERIES)
    assert not batch.negative_mask[0, 3] and not batch.negative_mask[3, 0]  # exact duplicate
    assert not batch.negative_mask[1, b + 2]  # same dup_group
    assert batch.negative_mask[0, b + 2] and batch.negative_mask[2, 1]  # others untouched
    assert batch.negative_mask.sum() == b * (2 * b - 1) - 3

    # Removing must equal MNRL over the remaining candidates, not MNRL with a small weight.
    kept = torch.ones(b, 2 * b, dtype=torch.bool)
    kept[0, 3] = kept[3, 0] = kept[1, b + 2] = False
    expected = direct_infonce_over(direct_scores(model, feats), kept)
    assert loss(feats, None).item() == pytest.approx(expected.item(), abs=1e-5)


def test_bm25_ranks_the_query_sharing_rare_terms_highest(model):
    queries = [
        "read a gzip compressed file",
        "decompress gzip data in memory",
        "compute the mean of a list",
        "sort a list of numbers",
    ]
    codes = [f"def f{i}(): pass  # {i}" for i in range(4)]
    weighter = BM25Weighter().fit(queries, codes)
    loss = SoftInfoNCELoss(model, weighter, alpha=1.0, beta=1.0)  # the paper's 1.5/0.5 needs n > 3 negatives
    feats = features(model, queries, codes)
    _, batch = loss.candidate_batch([model(f)["sentence_embedding"] for f in feats], loss.column_hashes(feats), None)
    relevance = weighter.relevance(batch)
    # Query 0 shares the rare term "gzip" with query 1 only; "a"/"list" are common.
    assert relevance[0, 1] > relevance[0, 2] and relevance[0, 1] > relevance[0, 3]
    assert relevance[2, 3] > relevance[2, 0]  # "list" shared by queries 2 and 3
    weights = loss.negative_weights(batch)
    assert weights[0, 1] < weights[0, 2]  # the relevant neighbour is pushed away less


def test_bm25_matches_rank_bm25_scores():
    """Our vectorized BM25 agrees with the rank-bm25 library's Okapi BM25 on the same tokens (up to IDF form)."""
    from rank_bm25 import BM25Okapi

    from hf_softnce.weighting.bm25 import code_aware_words

    queries = ["open a file for reading", "close the file handle", "read json from a file", "parse json text"]
    weighter = BM25Weighter().fit(queries, [f"c{i}" for i in range(4)])
    corpus = [code_aware_words(q) for q in queries]
    reference = BM25Okapi(corpus, k1=1.2, b=0.75)
    import numpy as np

    n = len(queries)
    df = {t: sum(t in doc for doc in corpus) for t in {t for doc in corpus for t in doc}}
    reference.idf = {t: float(np.log((n - d + 0.5) / (d + 0.5) + 1.0)) for t, d in df.items()}
    ours = (weighter._query_terms @ weighter._code_documents).toarray()
    for i, words in enumerate(corpus):
        assert ours[i].tolist() == pytest.approx(list(reference.get_scores(words)), rel=1e-5)


def test_cached_equals_uncached(model):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = torch.tensor([[0.9, 0.2 * i] for i in range(len(QUERIES))])
    plain = SoftInfoNCELoss(model, PrecomputedWeighter())
    cached = CachedSoftInfoNCELoss(model, PrecomputedWeighter(), mini_batch_size=2)
    value, grads = loss_and_gradients(model, plain, feats, labels)
    cached_value, cached_grads = loss_and_gradients(model, cached, feats, labels)
    assert abs(value.item() - cached_value.item()) < 1e-6
    assert_same_gradients(grads, cached_grads, atol=5e-6)


@pytest.mark.parametrize("variant", ["weighted_infonce", "bce", "kl_regularized"])
def test_baselines_match_the_papers_formulas(model, variant):
    """Re-computes each comparison baseline as the paper's released code does, on one row layout."""
    feats = features(model, QUERIES, CODES)
    labels = None
    weighter = BM25Weighter().fit(QUERIES, CODES)
    loss = SoftInfoNCELoss(model, weighter, variant=variant)
    value = loss(feats, labels).item()
    with torch.no_grad():
        embeddings = [model(f)["sentence_embedding"] for f in feats]
        scores, batch = loss.candidate_batch(embeddings, loss.column_hashes(feats), None)
        relevance = weighter.relevance(batch)
    b = len(QUERIES)
    off_diagonal = ~torch.eye(b, dtype=torch.bool)
    neg_scores = scores[off_diagonal].view(b, b - 1)
    p = torch.softmax(relevance[off_diagonal].view(b, b - 1) / 1.0, dim=1)
    row = torch.cat([scores.diag()[:, None], neg_scores], dim=1)
    targets = torch.cat([torch.ones(b, 1), p], dim=1)
    if variant == "weighted_infonce":
        expected = -(torch.log_softmax(row, dim=1) * targets).sum(1).mean()
    elif variant == "bce":
        expected = torch.nn.functional.binary_cross_entropy(torch.softmax(row, dim=1), targets)
    else:
        kl = torch.nn.functional.kl_div(torch.log_softmax(neg_scores, 1), p.log(), reduction="batchmean", log_target=True)
        ce = torch.nn.functional.cross_entropy(row, torch.zeros(b, dtype=torch.long))
        expected = 0.5 * ce + 1.5 * kl
    assert value == pytest.approx(expected.item(), abs=1e-5)


def test_remove_top_k_drops_the_most_relevant_negative(model):
    second_negatives = NEGATIVES[::-1]
    feats = features(model, QUERIES, CODES, NEGATIVES, second_negatives)
    labels = torch.zeros(len(QUERIES), 3)
    labels[:, 1] = 5.0  # every row's negative_1 is its most relevant candidate; negative_2 is not
    loss = SoftInfoNCELoss(model, PrecomputedWeighter(), variant="remove_top_k", remove_top_k=1)
    embeddings = [model(f)["sentence_embedding"] for f in feats]
    _, batch = loss.candidate_batch(embeddings, loss.column_hashes(feats), labels)
    removed = top_k_removed(loss, batch, relevance_distribution(loss, batch))
    b = len(QUERIES)
    assert removed.sum() == b and all(removed[i, b + i] for i in range(b))
    # The loss is InfoNCE (MNRL) over what remains, written out.
    kept = torch.ones(b, 3 * b, dtype=torch.bool)
    kept[torch.arange(b), b + torch.arange(b)] = False
    expected = direct_infonce_over(direct_scores(model, feats), kept)
    assert loss(feats, labels).item() == pytest.approx(expected.item(), abs=1e-5)


def test_remove_threshold_is_the_released_ratio_rule(model):
    """Released rule (Soft-InfoNCE GraphCodeBERT/run.py, "# threshold" under args.falsecancel): keep negative j of
    query i only if ``sim_neg[i][j] < args.ratio * pos_sim[i]``, ``pos_sim`` the relevance of i's own positive."""
    feats = features(model, QUERIES, CODES, NEGATIVES, NEGATIVES[::-1])
    b = len(QUERIES)
    # r_ii = 1; odd rows' negative_1 is above it, even rows' just below; negative_2 is 0.2, which is also the
    # batch minimum PrecomputedWeighter gives every other candidate.
    labels = torch.tensor([[1.0, 1.2 if i % 2 else 0.9, 0.2] for i in range(b)])
    relevance = torch.full((b, 3 * b), 0.2)
    relevance[torch.arange(b), torch.arange(b)] = labels[:, 0]
    relevance[torch.arange(b), b + torch.arange(b)] = labels[:, 1]
    scores = direct_scores(model, feats)
    for ratio, dropped in ((1.0, b // 2), (0.8, b)):
        loss = SoftInfoNCELoss(model, PrecomputedWeighter(), variant="remove_threshold", threshold_ratio=ratio)
        kept = relevance < ratio * labels[:, :1]  # the released mask, on this batch's relevance matrix
        kept[torch.arange(b), torch.arange(b)] = False  # the positive is not its own negative
        assert (~kept).sum() - b == dropped  # ratio 1: odd rows' 1.2 only; ratio 0.8: the even rows' 0.9 too
        expected = direct_infonce_over(scores, kept)
        assert loss(feats, labels).item() == pytest.approx(expected.item(), abs=1e-5)
        assert loss.get_config_dict()["threshold_ratio"] == ratio


# ----- bad input --------------------------------------------------------------------------------------
def test_batch_of_one_is_a_clear_error(model):
    with pytest.raises(ValueError, match="batch of one"):
        SoftInfoNCELoss(model)(features(model, QUERIES[:1], CODES[:1]), None)


def test_mismatched_columns_are_a_clear_error(model):
    with pytest.raises(ValueError, match="different batch sizes"):
        SoftInfoNCELoss(model)(features(model, QUERIES, CODES[:4]), None)


@pytest.mark.parametrize("bad", [float("nan"), -1.0])
def test_nan_or_negative_relevance_is_a_clear_error(model, bad):
    labels = torch.ones(len(QUERIES), 2)
    labels[2, 1] = bad
    with pytest.raises(ValueError, match="NaN|negative relevance"):
        SoftInfoNCELoss(model, PrecomputedWeighter())(features(model, QUERIES, CODES, NEGATIVES), labels)


def test_wrong_label_shape_and_missing_labels_are_clear_errors(model):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    loss = SoftInfoNCELoss(model, PrecomputedWeighter())
    with pytest.raises(ValueError, match="one score per candidate column"):
        loss(feats, torch.ones(len(QUERIES), 3))
    with pytest.raises(ValueError, match="needs a 'label' column"):
        loss(feats, None)


def test_unfitted_weighter_and_unknown_texts_are_clear_errors(model):
    with pytest.raises(RuntimeError, match="not fitted"):
        SoftInfoNCELoss(model, BM25Weighter())
    loss = SoftInfoNCELoss(model, BM25Weighter().fit(QUERIES[:3], CODES[:3]))
    with pytest.raises(KeyError, match="not seen by fit"):
        loss(features(model, QUERIES, CODES), None)


def test_config_and_citation(model):
    loss = SoftInfoNCELoss(model, BM25Weighter().fit(QUERIES, CODES))
    config = loss.get_config_dict()
    assert config["weighter"]["name"] == "BM25Weighter" and config["alpha"] == 1.5 and config["beta"] == 0.5
    assert config["weight_temperature"] == 1.0 and config["min_weight"] == 0.1
    assert "2310.08069" in loss.citation and "Rethinking Negative Pairs" in loss.citation
