"""Text identity under every prompt/truncation combination.

A trainer prompt (``prompts=``) takes places of ``max_seq_length``, so a long text reaches the loss with fewer of
its own tokens than the same text tokenized without the prompt. The estimators and duplicate groups fitted on raw
texts must still find it: in every column, under prompts of different lengths, after ``max_seq_length`` changes.
It failed with ``KeyError: 'BM25Weighter: 6 of 6 candidate texts were not seen by fit()'``.
"""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from hf_softnce.losses import CachedSoftInfoNCELoss, OrderInfoNCELoss, SoftInfoNCELoss
from hf_softnce.weighting import BM25Weighter, EmbeddingWeighter, TrainedModelWeighter
from loss_helpers import CODES, NEGATIVES, QUERIES

# Long enough that any prompt truncates them at max_seq_length 24 or 32.
BODY = "\n".join(f"    total = total + value_{i} * weight_{i}" for i in range(12))
LONG_CODES = [f"{code}\n{BODY}" for code in CODES]
LONG_NEGATIVES = [f"{code}\n{BODY}" for code in NEGATIVES]
LONG_QUERIES = [f"{query} " + " ".join(["including every detail of the input"] * 4) for query in QUERIES]
PROMPTS = {"query": "query: find the function that does this ", "code": "passage: ", "negative_1": "code: python "}
# Codes 0 and 1 are one duplicate group; each negative shares the group of its row's code + 1.
GROUPS = {code: ("same" if i in (0, 1) else f"g{i}") for i, code in enumerate(LONG_CODES)}
GROUPS.update({neg: f"n{i}" for i, neg in enumerate(LONG_NEGATIVES)})


def prompted_features(model):
    columns = {"query": LONG_QUERIES, "code": LONG_CODES, "negative_1": LONG_NEGATIVES}
    return [model.preprocess(texts, prompt=PROMPTS[name]) for name, texts in columns.items()]


def estimator(kind: str):
    if kind == "bm25":
        return BM25Weighter()
    if kind == "embedding":
        return EmbeddingWeighter(build_tiny_model(seed=2), cache=False, show_progress_bar=False)
    return TrainedModelWeighter(build_tiny_model(seed=3), cache=False, show_progress_bar=False)


def make_loss(kind: str, model):
    fitted = estimator(kind).fit(LONG_QUERIES, LONG_CODES, negatives=LONG_NEGATIVES)
    if kind == "order":
        return OrderInfoNCELoss(model, order_source=BM25Weighter().fit(LONG_QUERIES, LONG_CODES, negatives=LONG_NEGATIVES),
                                duplicate_groups=GROUPS)
    return SoftInfoNCELoss(model, fitted, duplicate_groups=GROUPS)


def assert_every_text_found(loss, model, feats):
    loss.sync_tokenization(feats)
    embeddings = [model(f)["sentence_embedding"] for f in feats]
    _, batch = loss.candidate_batch(embeddings, loss.column_hashes(feats), None)
    source = loss.estimators()[0]
    # Each query is its fitted row, each candidate the fitted code it is: codes, then negatives.
    assert source.query_rows(batch).tolist() == list(range(6))
    assert source.candidate_code_rows(batch).tolist() == list(range(12))
    # Duplicate masking: codes 0 and 1 share a group, so neither is the other's negative; all else is.
    mask = batch.negative_mask
    assert not mask[0, 1] and not mask[1, 0] and int(mask.sum()) == 6 * 11 - 2
    assert torch.isfinite(loss(feats, None))


@pytest.mark.parametrize("kind", ["bm25", "embedding", "trained", "order"])
@pytest.mark.parametrize("max_seq_length", [24, 32])
def test_prompted_truncated_texts_are_found_in_every_column(kind, max_seq_length):
    model = build_tiny_model()
    loss = make_loss(kind, model)
    model.max_seq_length = max_seq_length  # changed after the loss was built
    feats = prompted_features(model)
    truncated = [bool((f["attention_mask"].sum(dim=1) == max_seq_length).all()) for f in feats]
    assert truncated == [True, True, True]  # every text of every column lost tokens to its prompt
    assert_every_text_found(loss, model, feats)


def test_a_real_trainer_step_with_prompts_on_every_column_and_a_length_change(tmp_path):
    model = build_tiny_model()
    data = Dataset.from_dict({"query": LONG_QUERIES, "code": LONG_CODES, "negative_1": LONG_NEGATIVES})
    weighter = BM25Weighter().fit(data)
    losses = {"soft": SoftInfoNCELoss(model, weighter, duplicate_groups=GROUPS),
              "cached": CachedSoftInfoNCELoss(model, weighter, duplicate_groups=GROUPS, mini_batch_size=2),
              "order": OrderInfoNCELoss(model, order_source=weighter, duplicate_groups=GROUPS)}
    transformer = model[0]
    expected = tuple(sorted({transformer._get_prompt_length(p) for p in PROMPTS.values()}))
    assert len(expected) == 3
    for length in (24, 32):
        model.max_seq_length = length
        for name, loss in losses.items():
            args = SentenceTransformerTrainingArguments(
                output_dir=str(tmp_path / f"{name}-{length}"), per_device_train_batch_size=6, max_steps=2,
                learning_rate=1e-3, save_strategy="no", report_to=[], use_cpu=True, seed=0, prompts=PROMPTS,
                logging_steps=1,
            )
            trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
            trainer.train()
            assert trainer.state.global_step == 2
            assert all(torch.isfinite(torch.tensor(log["loss"])) for log in trainer.state.log_history if "loss" in log)
            assert loss._prompt_lengths == expected  # it saw (and hashed for) each column's prompt


# No trailing separator: the prompt's last word and the text's first one become other tokens ("codedef", "querys").
GLUED_PROMPTS = {"query": "query", "code": "Represent this code", "negative_1": "python"}


@pytest.mark.parametrize("kind", ["bm25", "order"])
def test_prompts_without_a_trailing_separator_are_found_in_every_column(kind):
    model = build_tiny_model()
    loss = make_loss(kind, model)
    columns = {"query": LONG_QUERIES, "code": LONG_CODES, "negative_1": LONG_NEGATIVES}
    feats = [model.preprocess(texts, prompt=GLUED_PROMPTS[name]) for name, texts in columns.items()]
    # The glued prompt changes the text's own tokens: the text alone at the shortened length differs.
    alone = model.preprocess(LONG_CODES[:1], max_length=model.max_seq_length - (feats[1]["prompt_length"] - 1))
    start = int(feats[1]["prompt_length"])
    assert feats[1]["input_ids"][0, start:start + 3].tolist() != alone["input_ids"][0, 1:4].tolist()
    assert_every_text_found(loss, model, feats)


def test_a_collator_truncating_at_its_own_max_length_is_named_in_the_error():
    """sentence-transformers' collator may truncate at its own ``max_length`` (it reaches the loss only as token
    ids): the lookup cannot see that length, so the error names it and the fix."""
    model = build_tiny_model()
    loss = make_loss("bm25", model)
    feats = [model.preprocess(texts, max_length=16) for texts in (LONG_QUERIES, LONG_CODES, LONG_NEGATIVES)]
    with pytest.raises(KeyError, match=r"data collator with its own max_length .*set model.max_seq_length"):
        loss(feats, None)


def test_a_new_prompt_of_a_length_already_seen_is_hashed_too():
    """Per-dataset prompts may share a token count; the second, glued to the text, must still be found."""
    model = build_tiny_model()
    loss = make_loss("bm25", model)
    columns = (LONG_QUERIES, LONG_CODES, LONG_NEGATIVES)
    spaced = [model.preprocess(texts, prompt="python ") for texts in columns]
    assert_every_text_found(loss, model, spaced)
    glued = [model.preprocess(texts, prompt="python") for texts in columns]  # a prompt first seen after a step
    assert int(spaced[1]["prompt_length"]) == int(glued[1]["prompt_length"])  # one length, two prompts
    assert_every_text_found(loss, model, glued)
