"""OrderInfoNCELoss against MultipleNegativesRankingLoss, CoSENTLoss and a direct re-computation of CoSENT."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

from hf_softnce.losses.cached_order_infonce import CachedOrderInfoNCELoss
from hf_softnce.losses.order_infonce import OrderInfoNCELoss, cosent_rows
from hf_softnce.weighting import BM25Weighter, PrecomputedWeighter
from loss_helpers import CODES, NEGATIVES, QUERIES, assert_same_gradients, features, loss_and_gradients

B = len(QUERIES)


@pytest.fixture
def model(tiny_model):
    tiny_model.eval()  # no dropout, so two losses see identical embeddings
    return tiny_model


def graded_labels() -> torch.Tensor:
    """Distinct labels per row, [positive, negative_1], with the positive first in every row."""
    return torch.tensor([[0.9 - 0.01 * i, 0.2 + 0.1 * i] for i in range(B)])


def embeddings_of(model, feats):
    return [model(f)["sentence_embedding"] for f in feats]


@pytest.mark.parametrize("with_negatives", [False, True])
def test_order_weight_zero_equals_mnrl_value_and_gradients(model, with_negatives):
    columns = [QUERIES, CODES, NEGATIVES] if with_negatives else [QUERIES, CODES]
    feats = features(model, *columns)
    labels = graded_labels() if with_negatives else None  # labels are present but unused
    reference_value, reference_grads = loss_and_gradients(model, MultipleNegativesRankingLoss(model), feats)
    value, grads = loss_and_gradients(model, OrderInfoNCELoss(model, order_weight=0.0), feats, labels)
    assert abs(value.item() - reference_value.item()) < 1e-6
    assert_same_gradients(grads, reference_grads)


def direct_cosent(logits, labels, mask):
    """log(1 + sum over label(a) > label(b) of exp(s_b - s_a)), pair by pair in Python floats."""
    total = 0.0
    entries = [j for j in range(len(labels)) if mask[j]]
    for a, b in itertools.product(entries, entries):
        if labels[a] > labels[b]:
            total += math.exp(logits[b] - logits[a])
    return math.log1p(total)


def test_cosent_rows_matches_the_pairwise_formula():
    torch.manual_seed(0)
    logits = torch.randn(5, 9, dtype=torch.float64) * 3
    labels = torch.randint(0, 4, (5, 9)).double()  # many ties, which make no pair
    labels[1, 2] = float("inf")  # an order source's positive: above all
    mask = torch.rand(5, 9) > 0.25
    mask[3] = False  # a row with nothing: exactly 0
    mask[4] = False
    mask[4, 0] = True  # a row with one entry: exactly 0
    values = cosent_rows(logits, labels, mask)
    for i in range(5):
        expected = direct_cosent(logits[i].tolist(), labels[i].tolist(), mask[i])
        assert values[i].item() == pytest.approx(expected, abs=1e-12)
    assert values[3].item() == 0.0 and values[4].item() == 0.0


def test_cosent_rows_gives_masked_entries_no_gradient():
    logits = torch.randn(2, 6, requires_grad=True)
    labels = torch.arange(12.0).view(2, 6)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[0, 3] = mask[1, 0] = False
    cosent_rows(logits, labels, mask).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 3] == 0 and logits.grad[1, 0] == 0 and logits.grad[0, 0] != 0


@pytest.mark.parametrize("across_batch", [False, True])
def test_order_term_alone_equals_cosent_loss(model, across_batch):
    """infonce_weight=0: the loss is sentence-transformers' CoSENTLoss on the same (query, candidate) pairs and
    labels — one CoSENTLoss over all pairs with across_batch, the mean of one per query row without."""
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = graded_labels()
    ours = OrderInfoNCELoss(model, infonce_weight=0.0, order_scale=15.0, across_batch=across_batch)
    value, grads = loss_and_gradients(model, ours, feats, labels)

    candidates = [*CODES, *NEGATIVES]
    # Written from the label column, not read from the loss: row i's positive (candidate i) has labels[i, 0], its
    # negative_1 (candidate B + i) labels[i, 1], and every in-batch code the row's lowest hard-negative label,
    # here labels[i, 1] (unlabeled="lowest"); no candidate duplicates a positive, so all 2B take part.
    rows = [
        [(i, j, labels[i, 0].item() if j == i else labels[i, 1].item()) for j in range(2 * B)] for i in range(B)
    ]
    groups = [[pair for row in rows for pair in row]] if across_batch else rows

    cosent = CoSENTLoss(model, scale=15.0)
    model.zero_grad(set_to_none=True)
    reference = 0.0
    for group in groups:
        pair_features = features(model, [QUERIES[i] for i, _, _ in group], [candidates[j] for _, j, _ in group])
        group_labels = torch.tensor([label for _, _, label in group])
        reference = reference + cosent(pair_features, group_labels) / len(groups)
    reference.backward()
    reference_grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    assert abs(value.item() - reference.item()) < 1e-6
    # The reference embeds the 72 (query, candidate) pairs padded differently, so gradients summed over every
    # token (token-type embeddings) differ by a few float32 ulps of the largest term.
    # 2B x 2B pairs summed in another order (and split across threads differently): a few ulps of the largest term.
    assert_same_gradients(grads, reference_grads, atol=2e-5)


def test_order_term_uses_the_raw_cosine_times_order_scale(model):
    """The CoSENT logits are order_scale * cos, whatever InfoNCE's scale."""
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = graded_labels()
    a = OrderInfoNCELoss(model, infonce_weight=0.0, scale=20.0, order_scale=7.0)
    b = OrderInfoNCELoss(model, infonce_weight=0.0, scale=3.0, order_scale=7.0)
    with torch.no_grad():
        assert a(feats, labels).item() == pytest.approx(b(feats, labels).item(), abs=1e-6)


def test_loss_is_the_weighted_sum_of_infonce_and_cosent(model):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = graded_labels()
    with torch.no_grad():
        infonce = MultipleNegativesRankingLoss(model)(feats, None).item()
        order = OrderInfoNCELoss(model, infonce_weight=0.0)(feats, labels).item()
        both = OrderInfoNCELoss(model, infonce_weight=0.3, order_weight=2.0)(feats, labels).item()
    assert both == pytest.approx(0.3 * infonce + 2.0 * order, abs=1e-5)


def test_scores_that_follow_the_labels_give_a_lower_order_loss(model):
    """A model whose scores follow the labels gets a lower order loss than one whose scores reverse them."""
    feats = features(model, QUERIES, CODES, NEGATIVES)
    loss = OrderInfoNCELoss(model, infonce_weight=0.0, unlabeled="ignore")
    with torch.no_grad():
        embeddings = embeddings_of(model, feats)
        scores, batch = loss.candidate_batch(embeddings, loss.column_hashes(feats), None)
    own_scores = scores.gather(1, batch.own_column_indices())  # what the model thinks: [positive, negative]
    following = own_scores.clone()
    reversed_ = -own_scores
    batch.labels = following
    agree = loss.order_loss(scores, batch).item()
    batch.labels = reversed_
    disagree = loss.order_loss(scores, batch).item()
    assert agree < disagree
    # One ordered pair per row: log(1 + e^(s_low - s_high)) is below log 2 exactly when the scores agree.
    assert disagree > math.log(2) > agree


def test_training_step_moves_scores_towards_the_labels(model):
    """One SGD step on the order term alone raises the score of the candidate labelled higher."""
    feats = features(model, QUERIES, CODES, NEGATIVES)
    with torch.no_grad():
        scores, batch = OrderInfoNCELoss(model).candidate_batch(
            embeddings_of(model, feats), OrderInfoNCELoss.column_hashes(feats), None
        )
    own = scores.gather(1, batch.own_column_indices())
    # Label the hard negative above the positive in every row: the opposite of what InfoNCE wants.
    labels = torch.tensor([[0.0, 1.0]] * B)
    loss = OrderInfoNCELoss(model, infonce_weight=0.0, unlabeled="ignore")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        loss(feats, labels).backward()
        optimizer.step()
    with torch.no_grad():
        after = loss.candidate_batch(embeddings_of(model, feats), loss.column_hashes(feats), None)[0]
    own_after = after.gather(1, batch.own_column_indices())
    assert (own_after[:, 1] - own_after[:, 0]).mean() > (own[:, 1] - own[:, 0]).mean()


def test_all_equal_labels_are_a_no_op(model):
    """Documented: all-equal labels make no ordered pair, so the order term is exactly 0 (never NaN)."""
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = torch.full((B, 2), 0.5)
    order_only, _ = loss_and_gradients(model, OrderInfoNCELoss(model, infonce_weight=0.0), feats, labels)
    assert order_only.item() == 0.0
    reference, reference_grads = loss_and_gradients(model, MultipleNegativesRankingLoss(model), feats)
    value, grads = loss_and_gradients(model, OrderInfoNCELoss(model), feats, labels)
    assert abs(value.item() - reference.item()) < 1e-6
    assert_same_gradients(grads, reference_grads)


def test_bad_labels_raise_clear_errors(model):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    loss = OrderInfoNCELoss(model)
    with pytest.raises(ValueError, match="one order label per candidate column"):
        loss(feats, torch.zeros(B, 3))
    nan_labels = graded_labels()
    nan_labels[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite order labels in batch rows \[2\]"):
        loss(feats, nan_labels)
    with pytest.raises(ValueError, match="needs order labels"):
        loss(feats, None)
    with pytest.raises(ValueError, match="both 0"):
        OrderInfoNCELoss(model, infonce_weight=0.0, order_weight=0.0)
    with pytest.raises(ValueError, match="unlabeled"):
        OrderInfoNCELoss(model, unlabeled="zero")


def test_pairs_with_one_label_per_row(model):
    """(query, code, score) pairs: a 1-D label; across the batch it is CoSENTLoss on the pairs themselves."""
    feats = features(model, QUERIES, CODES)
    labels = torch.tensor([0.1, 0.5, 0.3, 0.9, 0.7, 0.2])
    ours = OrderInfoNCELoss(model, infonce_weight=0.0, across_batch=True)
    with torch.no_grad():
        assert ours(feats, labels).item() == pytest.approx(CoSENTLoss(model)(feats, labels).item(), abs=1e-5)
        # Within rows there is nothing to order: the in-batch codes carry no label without hard negatives.
        assert OrderInfoNCELoss(model, infonce_weight=0.0)(feats, labels).item() == 0.0


def test_in_batch_candidates_take_the_rows_lowest_hard_negative_label(model):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = graded_labels()
    lowest = OrderInfoNCELoss(model)
    ignore = OrderInfoNCELoss(model, unlabeled="ignore")
    with torch.no_grad():
        _, batch = lowest.candidate_batch(embeddings_of(model, feats), lowest.column_hashes(feats), labels)
        order_labels, participating = lowest.order_labels(batch)
        _, ignored = ignore.order_labels(batch)
    own = batch.own_column_indices()
    assert participating.all()  # no duplicates in this batch
    assert torch.equal(order_labels.gather(1, own), labels)
    in_batch = torch.ones_like(participating).scatter_(1, own, False)
    assert torch.equal(order_labels[in_batch].view(B, -1), labels[:, 1:2].expand(B, 2 * B - 2))
    assert torch.equal(ignored, ~in_batch)


def test_duplicates_of_the_positive_take_no_part_in_either_term(model):
    negatives = list(NEGATIVES)
    negatives[1] = CODES[1]  # row 1's hard negative is its own positive
    feats = features(model, QUERIES, CODES, negatives)
    loss = OrderInfoNCELoss(model, infonce_weight=0.0)
    labels = graded_labels()
    with torch.no_grad():
        _, batch = loss.candidate_batch(embeddings_of(model, feats), loss.column_hashes(feats), labels)
        _, participating = loss.order_labels(batch)
        assert not participating[1, B + 1] and participating[0, B + 1]
        # Its label changes nothing, not even the in-batch fill of row 1 (the lowest of the kept negatives).
        changed = labels.clone()
        changed[1, 1] = -5.0
        assert loss(feats, changed).item() == loss(feats, labels).item()
        without = OrderInfoNCELoss(model, infonce_weight=0.0, mask_duplicates=False)
        assert without(feats, changed).item() != loss(feats, changed).item()


def test_order_source_ranks_the_positive_first(model):
    """With only an order source, the positive's label is +inf (above every candidate of its row); the other
    candidates take the source's scores."""
    weighter = BM25Weighter().fit(QUERIES, CODES, negatives=NEGATIVES)
    loss = OrderInfoNCELoss(model, weighter)
    feats = features(model, QUERIES, CODES, NEGATIVES)
    with torch.no_grad():
        _, batch = loss.candidate_batch(embeddings_of(model, feats), loss.column_hashes(feats), None)
        order_labels, participating = loss.order_labels(batch)
        relevance = weighter.relevance(batch)
    rows = torch.arange(B)
    assert torch.isinf(order_labels[rows, rows]).all() and (order_labels[rows, rows] > 0).all()
    others = torch.ones_like(participating)
    others[rows, rows] = False
    assert torch.equal(order_labels[others], relevance[others])
    assert participating.all()
    value, grads = loss_and_gradients(model, loss, feats)
    assert math.isfinite(value.item()) and all(torch.isfinite(g).all() for g in grads.values())


def test_label_column_overrides_the_source_on_the_rows_own_columns(model):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = graded_labels()
    loss = OrderInfoNCELoss(model, PrecomputedWeighter())
    with torch.no_grad():
        _, batch = loss.candidate_batch(embeddings_of(model, feats), loss.column_hashes(feats), labels)
        order_labels, _ = loss.order_labels(batch)
    assert torch.equal(order_labels.gather(1, batch.own_column_indices()), labels)


@pytest.mark.parametrize("source", [None, "bm25"])
def test_cached_equals_uncached(model, source):
    feats = features(model, QUERIES, CODES, NEGATIVES)
    labels = graded_labels() if source is None else None
    weighter = BM25Weighter().fit(QUERIES, CODES, negatives=NEGATIVES) if source else None
    plain = OrderInfoNCELoss(model, weighter, order_weight=0.5)
    cached = CachedOrderInfoNCELoss(model, weighter, order_weight=0.5, mini_batch_size=2)
    value, grads = loss_and_gradients(model, plain, feats, labels)
    cached_value, cached_grads = loss_and_gradients(model, cached, feats, labels)
    assert abs(value.item() - cached_value.item()) < 1e-6
    assert_same_gradients(grads, cached_grads, atol=5e-6)


def test_config_and_citation(model):
    loss = CachedOrderInfoNCELoss(model, BM25Weighter().fit(QUERIES, CODES), across_batch=True, mini_batch_size=4)
    config = loss.get_config_dict()
    assert config["order_source"]["name"] == "BM25Weighter"
    assert config["infonce_weight"] == 1.0 and config["order_weight"] == 1.0 and config["order_scale"] == 20.0
    assert config["across_batch"] is True and config["mini_batch_size"] == 4 and config["scale"] == 20.0
    assert "2503.08161" in loss.citation and "Order-Augmented Strategy for Improved Code Search" in loss.citation
    assert OrderInfoNCELoss(model).get_config_dict()["order_source"] is None
