"""SoftInfoNCELoss inside a real SentenceTransformerTrainer run: it trains, saves, reloads, and is on the card."""

from __future__ import annotations

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from hf_softnce.losses import SoftInfoNCELoss
from hf_softnce.weighting import BM25Weighter
from loss_helpers import CODES, NEGATIVES, QUERIES, features


def test_short_training_run_lowers_the_loss_saves_reloads_and_cards(tmp_path, tiny_model):
    data = Dataset.from_dict({"query": QUERIES, "code": CODES, "negative_1": NEGATIVES})
    loss = SoftInfoNCELoss(tiny_model, BM25Weighter().fit(data))
    feats = features(tiny_model, QUERIES, CODES, NEGATIVES)

    def current_loss() -> float:
        tiny_model.eval()
        with torch.no_grad():
            return loss(feats, None).item()

    before = current_loss()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=6,
        max_steps=15,
        learning_rate=5e-3,
        warmup_steps=0,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
    )
    trainer = SentenceTransformerTrainer(model=tiny_model, args=args, train_dataset=data, loss=loss)
    trainer.train()
    after = current_loss()
    assert after < before * 0.8, (before, after)

    tiny_model.save(str(tmp_path / "model"))
    reloaded = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    torch.testing.assert_close(
        reloaded.encode(QUERIES, convert_to_tensor=True), tiny_model.encode(QUERIES, convert_to_tensor=True)
    )
    card = (tmp_path / "model" / "README.md").read_text()
    assert "SoftInfoNCELoss" in card and "loss:SoftInfoNCELoss" in card
    assert "Rethinking Negative Pairs in Code Search" in card and "BM25Weighter" in card


def test_a_plain_trainer_save_of_the_packaged_model_credits_all_minilm_as_its_base(tmp_path, minilm_path):
    """sentence-transformers credits a base model only after a Hub look-up; the packaged copy loads from a folder."""
    from datasets import Dataset
    from huggingface_hub import ModelCard
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from hf_softnce.losses import SoftInfoNCELoss

    model = SentenceTransformer(minilm_path, device="cpu")
    train = Dataset.from_dict({"query": ["sort a list", "read a file", "add numbers", "reverse text"],
                               "code": ["sorted(xs)", "open(p).read()", "a + b", "s[::-1]"]})
    args = SentenceTransformerTrainingArguments(str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=4,
                                                report_to=[], use_cpu=True)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=SoftInfoNCELoss(model)).train()
    model.save(str(tmp_path / "final"))
    card = ModelCard.load(tmp_path / "final" / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "SentenceTransformer based on sentence-transformers/all-MiniLM-L6-v2" in card.text
