"""The main job's plan as data: its rows (one loss each, on the same data, steps and seeds) and its sizes.

A :class:`Row` names the config keys that define it, whether it trains on the mined hard negatives, and the row
whose trained model it reads (its ``teacher``: a trained-model estimator, an order teacher or GIST's guide). A
:class:`Size` is the shared settings, the rows it runs and its mining settings. :func:`check_plan` refuses a plan
whose rows cannot run (an unknown row, a teacher left out) before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hf_softnce.training.config import TrainConfig

BASE_TEACHER = "base"  # a row's teacher may be the run's own base model, frozen


@dataclass(frozen=True)
class Row:
    """One row of the comparison.

    Args:
        name: the row's name in tables, folders (:func:`run_slug`) and ``--methods``.
        settings: the config keys that define the row (``loss``, ``weighter``, ...).
        teacher: the row whose trained model (same seed) fills ``teacher_key``; :data:`BASE_TEACHER` for the base.
        teacher_key: the config key the teacher's model folder goes to (``weighter_model``, ``guide_model``).
        negatives: train on the mined hard negatives (else on in-batch negatives only).
        family: ``"hf_softnce"``, ``"sentence-transformers"`` (a peer built as its docs build it) or ``"baseline"``.
    """

    name: str
    settings: dict
    teacher: str | None = None
    teacher_key: str = "weighter_model"
    negatives: bool = False
    family: str = "hf_softnce"


MINED = " + mined negatives"
MNRL_HARDNESS = "MNRL hardness (hard negatives, 5)" + MINED
INFONCE = dict(loss="infonce", weighter="none")
ROWS = [
    Row("InfoNCE", INFONCE, family="baseline"),
    Row("InfoNCE" + MINED, INFONCE, negatives=True, family="baseline"),
    Row("SoftInfoNCE (BM25)", dict(loss="soft_infonce", weighter="bm25")),
    Row("SoftInfoNCE (BM25)" + MINED, dict(loss="soft_infonce", weighter="bm25"), negatives=True),
    # The trained-model estimator and the order teacher are the frozen InfoNCE retriever of the same seed, trained
    # on the same pairs: OASIS's order labels carry signal only from a teacher that knows more than the student.
    Row("SoftInfoNCE (trained model)", dict(loss="soft_infonce", weighter="trained_model"), teacher="InfoNCE"),
    Row("SoftInfoNCE (trained model)" + MINED, dict(loss="soft_infonce", weighter="trained_model"), teacher="InfoNCE",
        negatives=True),
    Row("OrderInfoNCE (InfoNCE teacher)", dict(loss="order_infonce", weighter="trained_model"), teacher="InfoNCE"),
    Row("OrderInfoNCE (InfoNCE teacher)" + MINED, dict(loss="order_infonce", weighter="trained_model"),
        teacher="InfoNCE", negatives=True),
    # sentence-transformers' own answers, with the arguments its documentation gives, then one other setting each
    # (PEER_CHOICE says how the setting a user is pointed to is chosen).
    Row("GISTEmbedLoss (guide: base)" + MINED, dict(loss="gist"), teacher=BASE_TEACHER, teacher_key="guide_model",
        negatives=True, family="sentence-transformers"),
    Row("GISTEmbedLoss (guide: InfoNCE)" + MINED, dict(loss="gist"), teacher="InfoNCE", teacher_key="guide_model",
        negatives=True, family="sentence-transformers"),
    # GISTEmbedLoss's temperature 0.01 is a logit scale of 100; every other row uses 20 (temperature 0.05).
    Row("GISTEmbedLoss (guide: base, temperature 0.05)" + MINED, dict(loss="gist", gist_temperature=0.05),
        teacher=BASE_TEACHER, teacher_key="guide_model", negatives=True, family="sentence-transformers"),
    Row("GISTEmbedLoss (guide: InfoNCE, temperature 0.05)" + MINED, dict(loss="gist", gist_temperature=0.05),
        teacher="InfoNCE", teacher_key="guide_model", negatives=True, family="sentence-transformers"),
    # The miner's positive-aware rule as GIST's mask: candidates the guide scores above 95 % of the positive.
    Row("GISTEmbedLoss (guide: InfoNCE, temperature 0.05, relative margin 0.05)" + MINED,
        dict(loss="gist", gist_temperature=0.05, gist_margin_strategy="relative", gist_margin=0.05),
        teacher="InfoNCE", teacher_key="guide_model", negatives=True, family="sentence-transformers"),
    # EmbeddingGemma's setting from MultipleNegativesRankingLoss's docstring: hard negatives, strength 5; and 9, the
    # top of the strengths its docstring's sources use.
    Row(MNRL_HARDNESS, dict(loss="mnrl", hardness_mode="hard_negatives", hardness_strength=5.0), negatives=True,
        family="sentence-transformers"),
    Row("MNRL hardness (hard negatives, 9)" + MINED, dict(loss="mnrl", hardness_mode="hard_negatives",
                                                         hardness_strength=9.0),
        negatives=True, family="sentence-transformers"),
]
ROW = {row.name: row for row in ROWS}
# R2PS: the InfoNCE retriever of the same seed re-ranked by a cross-encoder trained on negatives mined by it, so its
# interval against InfoNCE is the ranker's own contribution.
CASCADE = "R2PS cascade (InfoNCE -> ranker)"
CASCADE_TEACHER = "InfoNCE"
# The row the job saves with its card in hub/: the best on cosqa-heldout by the rule in benchmarks/hard_negatives.py
# (+0.012 [+0.005, +0.020] over SoftInfoNCE (BM25) on in-batch negatives, seeds 42 and 43; benchmarks/README.md).
DEFAULT_ROW = "SoftInfoNCE (trained model)" + MINED


@dataclass(frozen=True)
class Size:
    """A size of the main job: shared settings, its rows, seeds, per-row settings, mining settings and the row saved
    with its card in ``hub/`` (``default``)."""

    settings: dict
    rows: list[str]
    seeds: list[int] = field(default_factory=lambda: [42])
    row_settings: dict[str, dict] = field(default_factory=dict)
    # How the rows with ``negatives`` get them: the frozen base model ranks the whole codebase once, positive-aware.
    mining: dict = field(default_factory=dict)
    default: str = DEFAULT_ROW
    # Seeds after the first run only the rows within this MRR of the best row on the selection set at the first seed
    # (and the rows they learn from or are compared with); None: every row runs every seed.
    more_seeds_within: float | None = None


# Training data shared by every row: CoSQA's own training split less the held-out selection set; only the loss and
# the negatives differ between rows. lr 5e-5, codes at 128 tokens and WiSE-FT 0.75 are the levers measured on CoSQA
# (benchmarks/README.md). The job saves each row's final model itself: no trainer checkpoints.
COSQA = dict(data="cosqa", num_negatives=0, save_strategy="no", max_train_pairs=None, max_seq_length=128,
             learning_rate=5e-5, cosqa_corpus_size=None, select_on="none", wise_ft_weight=0.75)
# When CoSQA's training split is absent: real StackOverflow questions (CoNaLa), else the stdlib corpus.
FALLBACK_DATA = dict(data="python", conala_mix=1.0)
# NV-Retriever's TopK-PercPos, as sentence-transformers' mine_hard_negatives(relative_margin=0.05) does it: the
# hardest code of the whole codebase below 95 % of the positive's score, the positive's duplicate group excluded.
POSITIVE_AWARE = dict(num_negatives=1, mining_strategy="top", mining_relative_margin=0.05)
# How a sentence-transformers peer's setting is chosen (written before the runs): of a peer's rows (GISTEmbedLoss
# with one guide; MNRL hardness), the one with the highest MRR@1000 on cosqa-heldout at seed 42 of the full size,
# the documented setting on a tie within 0.002. The chosen one is the peer in the README's "when to use which" and,
# for MNRL, in --quick.
PEER_CHOICE = "highest cosqa-heldout MRR@1000 at the first seed; the documented setting (listed first) within 0.002"
PEER_TIE = 0.002
PEERS = {  # peer -> its rows, the documented setting first
    "GISTEmbedLoss (guide: base)": ["GISTEmbedLoss (guide: base)" + MINED,
                                    "GISTEmbedLoss (guide: base, temperature 0.05)" + MINED],
    "GISTEmbedLoss (guide: InfoNCE)": ["GISTEmbedLoss (guide: InfoNCE)" + MINED,
                                       "GISTEmbedLoss (guide: InfoNCE, temperature 0.05)" + MINED,
                                       "GISTEmbedLoss (guide: InfoNCE, temperature 0.05, relative margin 0.05)" + MINED],
    "MNRL hardness": [MNRL_HARDNESS, "MNRL hardness (hard negatives, 9)" + MINED],
}
# The cascade's ranker at the full size: R2PS's released head (mean pool, dense-gelu-LN-linear: it tells candidates
# apart at init), no warmup for that fresh head, and the negatives the ranker's learning check on cosqa-heldout
# ranks first (benchmarks/ranker_learning.py; rule: the highest rate of the gold code first among the retriever's
# top 3, after training; benchmarks/README.md): R2PS's probabilistic draw, positive-aware, from rank 10 on (0.410-0.415
# in three runs, random codes 0.409, at 100 steps of 32 on CPU; the GPU script re-runs the check at an epoch).
# R2PS's own learning rate for the ranker, 2e-5: over an epoch at 5e-5 its tanh saturated on every candidate and it
# stopped learning; at 2e-5 it learned (0.424 on the top 3, the retriever 0.383; benchmarks/README.md). An epoch, as
# the retrievers train, with the 3 negatives a query that check learned with.
FULL_RANKER = dict(ranker_head="released", ranker_warmup_ratio=0.0, ranker_negatives_from="probabilistic",
                   ranker_negatives_start=10, ranker_learning_rate=2e-5, ranker_steps=-1, ranker_negatives=3)
SIZES = {
    # The base, InfoNCE, the default and sentence-transformers' strongest peer on the full size (MNRL hardness, on
    # the same mined negatives). Batch and learning rate: the best of four candidates of ~1,280 pairs for the
    # default row on cosqa-heldout (benchmarks/full_on_gpu.sh states the rule; benchmarks/README.md the figures).
    # Training length 64 tokens (evaluation stays at 256): nearly every batch pads to its longest code, so a shorter
    # length buys pairs; 160 steps at 64 beat 80 at 128, 160 at 96 and 200 at 64 on cosqa-heldout within the
    # 20-minute budget (benchmarks/README.md, "The training length at the quick size").
    # The pairs its steps draw are a fixed seeded sample drawn up front (max_train_pairs), so the mining and the
    # trained-model estimator encode those pairs' texts, not all 7,520: the same pairs seen, less time.
    "quick": Size(dict(COSQA, max_steps=160, batch_size=16, learning_rate=1e-4, max_train_pairs=160 * 16,
                       max_seq_length=64),
                  rows=["InfoNCE", DEFAULT_ROW, MNRL_HARDNESS], mining=POSITIVE_AWARE),
    # One epoch at batch 64; SoftInfoNCE (BM25)'s alpha/beta chosen at this size (benchmarks/README.md). Seed 42 for
    # every row, a second seed (43) for the rows within 0.01 of the best on cosqa-heldout: where rows are that close,
    # the seed spread is shown beside the query intervals. Two seeds took about 7 hours on 2 CPU cores, a third
    # about 2.5 more: `--seeds 42 43 44` asks for it (the GPU script does).
    "full": Size(dict(COSQA, epochs=1.0, batch_size=64, **FULL_RANKER), rows=[row.name for row in ROWS] + [CASCADE],
                 row_settings={"SoftInfoNCE (BM25)": dict(alpha=1.3, beta=0.7)},
                 mining=POSITIVE_AWARE, seeds=[42, 43], more_seeds_within=0.01),
}


class PlanError(ValueError):
    """A plan that cannot run: the message is one line naming the row."""


def check_plan(names: list[str]) -> list[str]:
    """``names`` in table order, each known and with its teacher planned before it; else :class:`PlanError`."""
    known = [row.name for row in ROWS] + [CASCADE]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise PlanError(f"Unknown method(s) {unknown}; choose from {known}.")
    for name in names:
        teacher = CASCADE_TEACHER if name == CASCADE else ROW[name].teacher
        if teacher not in (None, BASE_TEACHER) and teacher not in names:
            raise PlanError(f"{name!r} needs the {teacher!r} row of the same seed: add it to --methods.")
    return [name for name in known if name in names]



def row_config_values(row: Row, size_rows: dict, overrides: dict, trained: dict[str, str], base_model: str) -> dict:
    """The config keys of one row: the size's measured choices for it (a user's KEY=VALUE of the same name wins),
    then the row's own settings, then its teacher's model folder."""
    values = {k: v for k, v in size_rows.get(row.name, {}).items() if k not in overrides}
    values.update(row.settings)
    if row.teacher is not None:
        values[row.teacher_key] = base_model if row.teacher == BASE_TEACHER else trained[row.teacher]
    return values


@dataclass
class Plan:
    """What one run will do, checked before any model is loaded."""

    size: str
    base: TrainConfig
    rows: list[Row]
    seeds: list[int]
    row_settings: dict[str, dict]
    mining: dict
    overrides: dict
    cascade: bool
    default: str
    more_seeds_within: float | None = None

    def row_values(self, row: "Row", trained: dict[str, str]) -> dict:
        """One row's config keys: its mining settings when it trains on mined negatives, then
        :func:`row_config_values`."""
        values = row_config_values(row, self.row_settings, self.overrides, trained, self.base.model)
        return {**(self.mining if row.negatives else {}), **values}

    def described_row_values(self, row: "Row") -> dict:
        """:meth:`row_values` with each teacher named as ``"<row name>"`` (that row's model of the same seed), never
        by a local path: what results.json and the default row's card show."""
        return self.row_values(row, {r.name: f"<{r.name}>" for r in self.rows})


def run_slug(name: str) -> str:
    """A row name as a folder name: ``"SoftInfoNCE (BM25)"`` -> ``"softinfonce-bm25"``."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return slug
