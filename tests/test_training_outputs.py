"""Library outputs train as they are: identity columns stay out of what a trainer tokenizes.

sentence-transformers' trainers tokenize every column of a row but the label. Handed identity columns, they stop
(`ValueError: Unsupported input type: int` for an integer `id`) or, with string ids, train on `id`, `path`,
`language`, `license` as extra "hard negatives" (9 text columns instead of 3).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import build_tiny_model, tiny_model_dir
from datasets import Dataset, load_from_disk
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments

from hf_softnce.data import all_columns, to_training_dataset
from hf_softnce.losses import OrderInfoNCELoss, R2PSRankerLoss, SoftInfoNCELoss
from hf_softnce.mining import RankingHardNegativeMiner, label_order
from loss_helpers import CODES, NEGATIVES, QUERIES

FIXTURES = Path(__file__).parent / "fixtures"
IDENTITY = ["id", "dup_group", "package", "path", "func_name", "language", "license"]


def pairs(id_type=int) -> Dataset:
    queries = QUERIES + [f"{query} Quickly." for query in QUERIES]
    codes = CODES + NEGATIVES
    n = len(queries)
    return Dataset.from_dict({
        "query": queries, "code": codes, "id": [id_type(i) for i in range(n)], "dup_group": list(range(n)),
        "package": [f"pkg{i % 3}" for i in range(n)], "path": [f"pkg/mod{i}.py" for i in range(n)],
        "func_name": [f"f{i}" for i in range(n)], "language": ["python"] * n, "license": ["MIT"] * n,
    })


class Recording:
    """Wraps a loss's forward: how many text columns and which label width each training step saw."""

    def __init__(self, loss):
        self.seen = []
        forward = loss.forward

        def recorded(features, labels=None):
            self.seen.append((len(features), None if labels is None else tuple(labels.shape[1:])))
            return forward(features, labels)

        loss.forward = recorded


def train(model, data, loss, tmp_path, **extra):
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, save_strategy="no", report_to=[],
        use_cpu=True, seed=0, **extra,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    trainer.train()
    return trainer


def test_mined_with_identity_columns_trains_with_query_code_and_negatives_only(tmp_path):
    model = build_tiny_model()
    mined = RankingHardNegativeMiner(model, num_negatives=1, show_progress_bar=False).mine(
        pairs(int), keep_identity_columns=True)
    assert mined.column_names == ["query", "code", "negative_1", *IDENTITY]
    assert list(mined[0]) == ["query", "code", "negative_1"]
    assert all_columns(mined)["id"] == list(range(12)) and all_columns(mined)[0]["license"] == "MIT"
    loss = SoftInfoNCELoss(model, duplicate_groups=mined)
    recording = Recording(loss)
    trainer = train(model, mined, loss, tmp_path)
    assert trainer.state.global_step == 2 and recording.seen == [(3, None), (3, None)]


def test_order_labels_with_string_ids_train_with_their_candidate_columns_only(tmp_path):
    model = build_tiny_model()
    mined = RankingHardNegativeMiner(model, num_negatives=2, show_progress_bar=False).mine(
        pairs(str), keep_identity_columns=True)
    labelled, _ = label_order(mined, "bm25", refine=False)
    assert list(labelled[0]) == ["query", "code", "negative_1", "negative_2", "label"]
    loss = OrderInfoNCELoss(model, duplicate_groups=labelled)
    recording = Recording(loss)
    train(model, labelled, loss, tmp_path)
    assert recording.seen == [(4, (3,)), (4, (3,))]  # 9 text columns before


def test_no_duplicates_sampler_fills_batches_when_every_row_shares_an_identity_value(tmp_path):
    """language="python" and license="MIT" in every row would leave the NO_DUPLICATES sampler one row per batch."""
    model = build_tiny_model()
    mined = RankingHardNegativeMiner(model, num_negatives=1, show_progress_bar=False).mine(
        pairs(str), keep_identity_columns=True)

    def batch_sizes(data, folder):
        loss = SoftInfoNCELoss(model)
        sizes, forward = [], loss.forward
        loss.forward = lambda features, labels=None: sizes.append(len(features[0]["input_ids"])) or forward(features, labels)
        train(model, data, loss, tmp_path / folder, batch_sampler=BatchSamplers.NO_DUPLICATES)
        return sizes

    # The same batches as the model columns alone give (a mined negative may repeat another row's code, so the
    # sampler can close a batch early); with the identity values visible every batch would hold one row.
    expected = batch_sizes(to_training_dataset(mined), "reference")
    assert min(expected) > 1 and batch_sizes(mined, "mined") == expected


def test_identity_columns_survive_saving_selecting_and_shuffling_out_of_the_rows(tmp_path):
    model = build_tiny_model()
    mined = RankingHardNegativeMiner(model, num_negatives=1, show_progress_bar=False).mine(
        pairs(int), keep_identity_columns=True)
    mined.save_to_disk(str(tmp_path / "mined"))
    for data in (load_from_disk(str(tmp_path / "mined")), mined.shuffle(seed=1).select(range(5)), mined.filter(lambda r: True)):
        assert list(data[0]) == ["query", "code", "negative_1"] and "dup_group" in data.column_names
    reloaded = load_from_disk(str(tmp_path / "mined"))
    assert all_columns(reloaded)["dup_group"] == list(range(12))
    assert to_training_dataset(reloaded).column_names == ["query", "code", "negative_1"]


def test_mined_with_identity_columns_trains_a_cross_encoder(tmp_path):
    retriever = build_tiny_model()
    mined = RankingHardNegativeMiner(retriever, num_negatives=2, show_progress_bar=False).mine(
        pairs(int), keep_identity_columns=True)
    ranker = CrossEncoder(tiny_model_dir(seed=1), num_labels=1, device="cpu")
    args = CrossEncoderTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2,
                                         save_strategy="no", report_to=[], use_cpu=True, seed=0)
    trainer = CrossEncoderTrainer(model=ranker, args=args, train_dataset=mined, loss=R2PSRankerLoss(ranker))
    trainer.train()
    assert trainer.state.global_step == 2 and torch.isfinite(torch.tensor(trainer.state.log_history[-1]["train_loss"]))


def _codesearchnet_train():
    from hf_softnce.data import load_codesearchnet

    return load_codesearchnet("python", data_dir=FIXTURES / "codesearchnet" / "python", splits=("train",),
                              verbose=False).train


def _cosqa_train():
    import warnings

    from hf_softnce.data import load_cosqa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixture's QA file holds dev queries: dropped with a warning
        return load_cosqa(data_dir=FIXTURES / "cosqa", splits=("train", "valid"), verbose=False).train


def _python_corpus_train(tmp_path):
    import shutil
    import sysconfig

    from hf_softnce.data import build_python_corpus

    source = tmp_path / "src"
    for name in ("textwrap.py", "shlex.py", "calendar.py", "fractions.py"):
        (source / name.removesuffix(".py")).mkdir(parents=True)
        shutil.copy(Path(sysconfig.get_paths()["stdlib"]) / name, source / name.removesuffix(".py") / name)
    corpus = build_python_corpus(sources=[str(source)], output_dir=tmp_path / "corpus", cache=False, progress=False,
                                 workers=1)
    return corpus["train"]


@pytest.mark.parametrize("loader", ["codesearchnet", "cosqa", "python_corpus"])
def test_every_loaders_training_pairs_train_as_they_are(loader, tmp_path):
    """The loaders' pairs carry id, dup_group, package, ... in the table but only two text columns in each row, so
    the trainer neither stops (``Unsupported input type: int``) nor trains on ``"python"`` and paths as negatives."""
    loaded = {"codesearchnet": _codesearchnet_train, "cosqa": _cosqa_train,
              "python_corpus": lambda: _python_corpus_train(tmp_path)}[loader]()
    identity = [c for c in loaded.column_names if c not in ("query", "code")]
    assert "id" in identity and "dup_group" in identity  # still there, out of the rows
    assert list(loaded[0]) == ["query", "code"]
    assert len(all_columns(loaded)["dup_group"]) == len(loaded)
    model = build_tiny_model()
    loss = SoftInfoNCELoss(model, duplicate_groups=loaded)
    recording = Recording(loss)
    trainer = train(model, loaded.select(range(min(len(loaded), 8))), loss, tmp_path / "run")
    assert trainer.state.global_step == 2 and recording.seen == [(2, None), (2, None)]


def test_a_run_without_base_metrics_leaves_no_earlier_runs_base_metrics_beside_its_own(tmp_path, small_corpus):
    """Trained again into the same folder with evaluate_base off, the run removes the earlier run's base_metrics.json,
    which would read as this run's base beside its metrics.json."""
    from hf_softnce.training.config import TrainConfig
    from hf_softnce.training.data import load_task_data
    from hf_softnce.training.run import train_retriever

    settings = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURES / "cosqa"), max_steps=1,
                    batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0, save_strategy="no", select_on="none",
                    output_dir=str(tmp_path / "run"))
    first = TrainConfig.from_dict({**settings, "evaluate_base": True})
    data = load_task_data(first, progress=False)
    train_retriever(first, data, progress=False)
    assert (tmp_path / "run" / "base_metrics.json").is_file()
    train_retriever(TrainConfig.from_dict({**settings, "evaluate_base": False}), data, progress=False)
    assert not (tmp_path / "run" / "base_metrics.json").exists() and (tmp_path / "run" / "metrics.json").is_file()


def test_num_negatives_mines_hard_negatives_for_pairs_that_have_none(tmp_path, small_corpus, monkeypatch):
    """hf-softnce train / the recipes with num_negatives: the pairs get that many mined negatives (the base model's
    ranking, never the positive) before training, as the card then says; pairs that have negatives keep them."""
    import hf_softnce.training.run as run
    from hf_softnce.training.config import TrainConfig
    from hf_softnce.training.data import load_task_data

    seen = []

    class Recording(run.SentenceTransformerTrainer):
        def __init__(self, *args, train_dataset=None, **kwargs):
            seen.append(train_dataset)
            super().__init__(*args, train_dataset=train_dataset, **kwargs)

    monkeypatch.setattr(run, "SentenceTransformerTrainer", Recording)
    settings = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURES / "cosqa"), max_steps=1,
                    batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0, save_strategy="no",
                    select_on="none", evaluate_base=False, num_negatives=2, mining_relative_margin=0.05)
    config = TrainConfig.from_dict({**settings, "output_dir": str(tmp_path / "run")})
    data = load_task_data(config, progress=False)
    run.train_retriever(config, data, progress=False)
    trained = seen[0]
    assert trained.column_names == ["query", "code", "negative_1", "negative_2"]
    assert all(row["negative_1"] != row["code"] and row["negative_2"] != row["code"] for row in trained)
    assert len(trained) <= len(data.train)  # rows without 2 eligible negatives are skipped, counted by the miner
    # Pairs that already carry negatives train on them as they are.
    mined = data.train.add_column("negative_1", list(reversed(data.train["code"])))
    data.train = mined
    run.train_retriever(TrainConfig.from_dict({**settings, "output_dir": str(tmp_path / "run2")}), data, progress=False)
    assert seen[1]["negative_1"] == mined["negative_1"] and "negative_2" not in seen[1].column_names
