"""Hard negatives from a frozen retriever's ranking, and the R2PS ranker built and trained on them.

Shared by the main job and the recipes: every method of one comparison trains on the same mined negatives.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from dataclasses import replace

from datasets import Dataset
from sentence_transformers import CrossEncoder
from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers
from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
from torch import nn

from hf_softnce.data import all_columns, to_training_dataset
from hf_softnce.losses import R2PSRankerLoss
from hf_softnce.mining import RankingHardNegativeMiner
from hf_softnce.model_checks import check_model_folder
from hf_softnce.training.checkpoints import SaveConfigCallback, resume_checkpoint
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.models import resolve_model_name


def mine_negatives(config: TrainConfig, train: Dataset, retriever, *, num_negatives: int | None = None,
                   corpus: dict[str, int] | None = None, progress: bool = True, with_report: bool = False):
    """``train`` with ``negative_1..k`` ranked by ``retriever`` (never the positive or its duplicate group, never
    above the config's mining margins).

    ``corpus``: ``{code: duplicate group}`` to rank (e.g. the whole CoSQA codebase, R2PS's setting); ``None`` ranks
    the training pairs' own codes. ``with_report``: return ``(dataset, MiningReport)`` (what the margins dropped,
    the rows skipped).
    """
    miner = RankingHardNegativeMiner(
        retriever,
        num_negatives=num_negatives or config.num_negatives or 31,
        strategy=config.mining_strategy,
        window_start=config.mining_window_start,
        absolute_margin=config.mining_absolute_margin,
        relative_margin=config.mining_relative_margin,
        seed=config.seed,
        show_progress_bar=progress,
    )
    # dup_group stays: the losses mask each positive's duplicates among the in-batch candidates.
    mined = miner.mine(train, corpus, keep_identity_columns=True)
    if not with_report:  # a caller that takes the report says it itself
        print(miner.last_report.summary())
    # The run's bookkeeping copy (TaskData.train): identity columns readable by column and row; every trainer
    # gets to_training_dataset(...) of it.
    return (all_columns(mined), miner.last_report) if with_report else all_columns(mined)


def r2ps_ranker(model_name_or_path: str, *, head: str = "stock", max_length: int | None = None, **kwargs) -> CrossEncoder:
    """A one-label CrossEncoder for :class:`R2PSRankerLoss`, with the stock head or the released R2PS head.

    Args:
        model_name_or_path: the encoder (a Hugging Face model or a path).
        head: ``"stock"``: the encoder's sequence-classification head (BERT: the ``[CLS]`` pooler ``dense -> tanh``
            then a linear layer), as ``CrossEncoder(name, num_labels=1)`` builds it. ``"released"``: the released
            R2PS ranker (R2PS model.py, ``Unixcoder_RR``: mean of the token states, then ``RobertaLMHead``:
            ``dense -> gelu -> layer_norm -> decoder`` to one logit), built from sentence-transformers modules
            (``Transformer``, mean ``Pooling``, ``Dense`` with GELU, ``LayerNorm``, ``Dense`` to ``"scores"``) so
            it saves and loads as a plain CrossEncoder.
        max_length: the pair's token budget.
        kwargs: passed to ``CrossEncoder`` (``config_kwargs``/``model_kwargs`` to the encoder for either head).
    """
    check_model_folder(model_name_or_path)
    if head == "stock":
        return CrossEncoder(model_name_or_path, num_labels=1, max_length=max_length, **kwargs)
    if head != "released":
        raise ValueError(f"head must be 'stock' or 'released', got {head!r}.")
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.sentence_transformer.modules import LayerNorm, Pooling

    processor_kwargs = {"model_max_length": max_length} if max_length is not None else None
    encoder = Transformer(
        model_name_or_path,
        transformer_task="feature-extraction",
        processor_kwargs=processor_kwargs,
        config_kwargs=kwargs.pop("config_kwargs", None),  # e.g. dropout settings, as CrossEncoder(name) takes them
        model_kwargs=kwargs.pop("model_kwargs", None),
    )
    hidden = encoder.get_embedding_dimension()
    modules = [
        encoder,
        Pooling(hidden, pooling_mode="mean"),  # released: mean over the non-padding tokens
        Dense(hidden, hidden, activation_function=nn.GELU()),
        LayerNorm(hidden),
        Dense(hidden, 1, activation_function=None, module_output_name="scores"),
    ]
    return CrossEncoder(modules=modules, **kwargs)


# Positive-aware ranker negatives: below 95 % of the positive's score (NV-Retriever's TopK-PercPos, as the
# retrievers' mined rows), so the likely true answers among the retriever's top ranks are never negatives.
RANKER_RELATIVE_MARGIN = 0.05


def ranker_learning_rate(config: TrainConfig) -> float:
    """The learning rate the R2PS ranker trains at: ``ranker_learning_rate``, else the retrievers' ``learning_rate``."""
    return config.ranker_learning_rate if config.ranker_learning_rate is not None else config.learning_rate


def ranker_negatives(config: TrainConfig, train: Dataset, retriever, *, num_negatives: int,
                     corpus: dict[str, int]) -> Dataset:
    """``train`` with ``negative_1..num_negatives`` for the R2PS ranker, from ``config.ranker_negatives_from``:

    - ``"retriever top"``: ``retriever``'s top ranks under the config's mining settings (R2PS's own mining);
    - ``"positive-aware top"``: its top ranks below ``(1 - 0.05)`` times the positive's score;
    - ``"probabilistic"``: R2PS's draw from the positive-aware top 100 (weight ``exp(-rank / 10)``);
    - ``"mixed"``: the positive-aware top 1, then random codes;
    - ``"random"``: random codes of ``corpus``.

    ``config.ranker_negatives_start`` moves the positive-aware kinds' first rank deeper (``"probabilistic"`` then
    draws from ranks ``[start, start + 100)``): negatives harder than random ones but past the top ranks, where
    CoSQA's unlabelled true answers sit.

    Random codes are never in the positive's duplicate group (``corpus``: ``{code: duplicate group}``) nor already a
    negative of the row, and are drawn with ``random.Random(config.seed)``, so a run's negatives repeat.
    """
    kind, start = config.ranker_negatives_from, config.ranker_negatives_start
    if kind == "random":
        return add_random_negatives(all_columns(train), corpus, range(1, num_negatives + 1), config.seed)
    if kind != "retriever top":
        config = replace(config, mining_strategy="probabilistic" if kind == "probabilistic" else
                         "window" if start else "top",
                         mining_window_start=start, mining_relative_margin=RANKER_RELATIVE_MARGIN,
                         mining_absolute_margin=None)
    mined = mine_negatives(config, train, retriever, num_negatives=1 if kind == "mixed" else num_negatives,
                           corpus=corpus, progress=False)
    if kind == "mixed":
        mined = add_random_negatives(mined, corpus, range(2, num_negatives + 1), config.seed)
    return mined


def add_random_negatives(dataset: Dataset, corpus: dict[str, int], columns, seed: int) -> Dataset:
    """``dataset`` with a random code of ``corpus`` as ``negative_<k>`` for each k in ``columns``: never in the
    duplicate group of any positive of the row's query (the same query text may have several rows, as the miner's
    co-positives), never a code the row already has as a negative.

    Raises:
        ValueError: ``corpus`` has too few codes outside a row's duplicate group.
    """
    rng = random.Random(seed)
    codes = list(corpus)
    group_size = Counter(corpus.values())
    answers: dict[str, set] = {}  # query text -> the duplicate groups of all its positives
    for query, code in zip(dataset["query"], dataset["code"]):
        answers.setdefault(query, set()).add(corpus.get(code, code))
    rows = []
    for index, row in enumerate(dataset):
        taken = {row[name] for name in row if name.startswith("negative_")}
        groups = answers[row["query"]]
        if len(codes) - sum(group_size[g] for g in groups) - len(taken) < len(columns):  # else the draw never ends
            raise ValueError(f"Row {index}: the corpus has fewer than {len(columns)} codes outside its positive's "
                             "duplicate group to draw random negatives from.")
        picked: list[str] = []
        while len(picked) < len(columns):
            other = rng.choice(codes)
            if corpus[other] not in groups and other not in picked and other not in taken:
                picked.append(other)
        rows.append(picked)
    for i, k in enumerate(columns):
        dataset = dataset.add_column(f"negative_{k}", [picked[i] for picked in rows])
    return dataset


def judged_pairs(config: TrainConfig, held_out_queries) -> Dataset:
    """CoSQA's human-judged training pairs (``query``, ``code``, ``label`` 1.0 / 0.0) for the ranker's second task,
    without ``held_out_queries`` (texts: the selection set) and dev's queries; the filtered count is printed.

    Raises:
        FileNotFoundError: no local CoSQA folder (``data_dir`` or ``cosqa_dir``) holding the training split.
    """
    from hf_softnce.data import SkipReport, load_cosqa_judged_pairs
    from hf_softnce.training.data import cosqa_folder

    folder = config.data_dir or cosqa_folder(config.cosqa_dir)
    if folder is None:
        raise FileNotFoundError("ranker_judged_pairs=true needs CoSQA's local files (data_dir or cosqa_dir).")
    report = SkipReport()
    pairs = load_cosqa_judged_pairs(folder, exclude_queries=held_out_queries, report=report)
    labels = Counter(pairs["label"])
    print(f"judged pairs for the ranker: {labels[1.0]:,} answering, {labels[0.0]:,} judged not to; "
          f"{report.total_filtered:,} left out (their query is held out), {report.total_skipped:,} bad records")
    return pairs


def train_ranker(config: TrainConfig, mined: Dataset, judged: Dataset | None = None) -> CrossEncoder:
    """The R2PS ranker: softmax cross-entropy over (positive, its mined negatives), score tanh(logit) * scale.

    The loss sets the CrossEncoder's activation to ``Tanh``, so ``predict`` returns the score the loss trained (times
    ``1 / scale``), which the cascade's ``combine="add"`` adds to the retriever's cosine as R2PS does.
    ``config.ranker_head``: the stock head or R2PS's released one (:func:`r2ps_ranker`).

    ``judged``: (``query``, ``code``, ``label``) pairs (:func:`judged_pairs`) trained beside, binary cross-entropy on
    the raw logit (sentence-transformers' ``BinaryCrossEntropyLoss``), batches alternating round-robin with the
    listwise ones: ``config.max_steps`` counts the listwise steps, and the trainer runs twice as many in all.
    """
    from transformers import set_seed

    from hf_softnce.training.run import training_arguments

    if judged is not None and config.max_steps > 0:  # the trainer counts both tasks' batches
        config = replace(config, max_steps=2 * config.max_steps)
    if config.ranker_warmup_ratio is not None:  # a fresh head may need none: warmup makes its first steps no-ops
        config = replace(config, warmup_ratio=config.ranker_warmup_ratio)
    config = replace(config, learning_rate=ranker_learning_rate(config))
    resume = resume_checkpoint(config.resume_from_checkpoint, config.output_dir, config)  # before the model loads
    # The head is new weights: drawn from config.seed, so a run's ranker repeats (the Trainer seeds only later).
    set_seed(config.seed)
    ranker = r2ps_ranker(resolve_model_name(config.ranker_model), head=config.ranker_head,
                         max_length=config.max_seq_length)
    args = training_arguments(config, selecting=False, metric=None, args_class=CrossEncoderTrainingArguments)
    # R2PSRankerLoss has no in-batch negatives, so rows sharing a negative may share a batch.
    args.batch_sampler = BatchSamplers.BATCH_SAMPLER
    # Every parameter of a CrossEncoder gets a gradient. The Trainer's default for a non-transformers module
    # (find_unused_parameters=True) makes DDP fail with "marked a variable ready twice" on any CrossEncoder loss.
    args.ddp_find_unused_parameters = False
    loss = R2PSRankerLoss(ranker, scale=config.ranker_scale)
    train_dataset = to_training_dataset(mined)
    if judged is not None:
        train_dataset = {"listwise": train_dataset, "judged": judged.select_columns(["query", "code", "label"])}
        loss = {"listwise": loss, "judged": BinaryCrossEntropyLoss(ranker)}  # its own Identity: the raw logit
        args.multi_dataset_batch_sampler = MultiDatasetBatchSamplers.ROUND_ROBIN
    trainer = CrossEncoderTrainer(model=ranker, args=args, train_dataset=train_dataset, loss=loss,
                                  callbacks=[SaveConfigCallback(config)])
    trainer.train(resume_from_checkpoint=resume)
    problem = scores_collapsed(ranker, mined)
    if problem:
        warnings.warn(problem, RuntimeWarning, stacklevel=2)
    return ranker


# Below this mean spread (max - min of tanh(logit) over one query's candidates) the ranker no longer tells candidates
# apart. Learning rankers measured 0.24-0.40 on CoSQA (dev-500, top 10); the collapsed one 3e-6.
COLLAPSED_SPREAD = 1e-3
# Scores this close to +-1 on average: tanh's gradient there is below 0.02, so the ranker cannot learn back.
SATURATED = 0.99


def scores_collapsed(ranker: CrossEncoder, mined: Dataset, queries: int = 32) -> str | None:
    """A one-line diagnosis when ``ranker`` scores every candidate of a query alike, else None.

    R2PS's score is ``tanh(logit)``: once every logit is far from 0 the tanh saturates, its gradient vanishes,
    :class:`R2PSRankerLoss` stays at ``ln(1 + negatives)`` and the ranker cannot learn back; a cascade then re-orders
    by noise. Seen on CoSQA at lr 5e-5 over an epoch, not at R2PS's 2e-5 (benchmarks/README.md).

    Args:
        ranker: the trained CrossEncoder; its own activation is applied (tanh after :class:`R2PSRankerLoss`).
        mined: its training rows, ``query``, ``code`` and ``negative_1..k``; the first ``queries`` rows are scored.
        queries: how many rows to score (each is ``1 + k`` pairs).
    """
    import numpy as np

    rows = mined.select(range(min(queries, len(mined))))
    columns = ["code"] + sorted((c for c in rows.column_names if c.startswith("negative_")),
                                key=lambda c: int(c.split("_")[1]))
    if not len(rows) or len(columns) < 2:
        return None
    pairs = [(row["query"], row[column]) for row in rows for column in columns]
    scores = np.asarray(ranker.predict(pairs, show_progress_bar=False), dtype=np.float64).reshape(len(rows), -1)
    spread = float((scores.max(axis=1) - scores.min(axis=1)).mean())
    if spread >= COLLAPSED_SPREAD:
        return None
    if np.abs(scores).mean() > SATURATED:
        why = ("its tanh is saturated and it has stopped learning; lower ranker_learning_rate (R2PS: 2e-5) or "
               "ranker_scale")
    else:
        why = "it has learned nothing that tells them apart; train it longer or on other negatives"
    return (f"the R2PS ranker scores every candidate alike after training (mean spread {spread:.1e} over "
            f"{len(rows)} training queries' {len(columns)} candidates, mean score {scores.mean():+.4f}): {why}.")
