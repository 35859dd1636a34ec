"""What a model card says about one run: the training data, each evaluation set with its corpus size, the results.

Plain dataclasses, so a recipe, the main job or a user can fill them without a trained model at hand.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The Hub ids of the datasets hf_softnce loads, keyed by the name its loaders give them ("cosqa",
# "conala-curated", "codesearchnet-python", "advtest"). The embedded Python corpus has none.
DATASET_IDS = {
    "cosqa": "CoIR-Retrieval/cosqa",
    "conala": "neulab/conala",
    "codesearchnet": "code-search-net/code_search_net",
    "advtest": "google/code_x_glue_tc_nl_code_search_adv",
}
COSQA_DATASET_ID = DATASET_IDS["cosqa"]
KINDS = ("retriever", "ranker")
DATASET_NAMES = {"cosqa": "CoSQA", "conala": "CoNaLa", "codesearchnet": "CodeSearchNet", "advtest": "AdvTest"}


def dataset_id(source: str) -> str | None:
    """The Hub id of a loader's dataset name ("conala-curated (120 pairs)" -> "neulab/conala"), else None."""
    family = source.strip().lower().split("-")[0].split(" ")[0].split(":")[0]
    return DATASET_IDS.get(family)


@dataclass
class DataSummary:
    """The training data, as the card reports it.

    Args:
        sources: where the data came from, one human-readable line each (no local paths: they mean nothing on the Hub).
        splits: rows per split, e.g. ``{"train": 12000}``.
        counts: other named counts worth reporting (``{"duplicate groups": 310}``).
        description: how the data was built (one paragraph, markdown).
        datasets: Hub ids of the training datasets, for the card's ``datasets`` metadata (only real Hub ids).
        languages: programming languages of the code.
    """

    sources: list[str]
    splits: dict[str, int]
    counts: dict[str, int] = field(default_factory=dict)
    description: str = ""
    datasets: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=lambda: ["python"])


@dataclass
class EvalSummary:
    """One evaluation set and every model measured on it.

    Args:
        name: a pretty name ("CoSQA dev-500").
        results: ``{row: {metric: value}}``; metric ids as the evaluation module writes them (``"mrr@1000"``), a
            value is a float or one float per seed. The run's own row holds the numbers of the saved weights.
        queries: how many queries were ranked.
        corpus_size: how many codes each query was ranked against (a smaller corpus inflates every metric).
        dataset_id: the Hub id of the dataset, or None (no Hub id: the set is named only).
        split: the split of ``dataset_id`` the queries came from (the model-index groups results by it).
        note: how the set was used, e.g. "the best checkpoint was chosen on it".
        args: more model-index ``dataset.args`` beside ``queries`` and ``corpus_size`` (e.g. which subset of the
            split), or empty.
        intervals: paired-bootstrap rows on this set, ``{"name", "mrr", "delta_vs_<row>": (diff, low, high)}``
            (a difference and its 95% interval), shown under its table; or empty.
    """

    name: str
    results: dict[str, dict[str, float | list[float]]]
    queries: int
    corpus_size: int
    dataset_id: str | None = None
    split: str = "test"
    note: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    intervals: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, row in enumerate(self.intervals):
            if "name" not in row:
                raise ValueError(f"{self.name}: intervals[{i}] has no 'name': {row!r}.")
            for key, value in row.items():
                if key.startswith("delta_") and value is not None and (
                    not isinstance(value, (list, tuple)) or len(value) != 3 or not all(is_number(v) for v in value)
                ):
                    raise ValueError(f"{self.name}: intervals[{i}][{key!r}] must be (diff, lo, hi), got {value!r}.")

    @property
    def over(self) -> str:
        return f"{self.queries:,} queries over {self.corpus_size:,} codes"


@dataclass
class RunSummary:
    """Everything the model card, ``eval_results.json`` and ``training_config.yaml`` say about one training run.

    Args:
        model_name: a pretty name for the model (the ``model-index`` name).
        base_model: the model fine-tuned, ideally its Hub id; a local path is never written to the card.
        method: the row of this model (the saved weights) in every evaluation's results.
        loss_name, loss_config, citations: from :func:`describe_loss`.
        data: the training data (:class:`DataSummary`).
        evaluations: one :class:`EvalSummary` per evaluation set.
        baseline: a row trained differently (InfoNCE) to compare with side by side; None, or the run itself,
            means no comparison table.
        base_row: the base model's row, shown beside this model's when the base was evaluated.
        training_args: the training arguments; token values and local paths are left out when written.
        seeds: the seed(s) behind the results; with several, the saved weights are the first seed's.
        repo_id: where the model will live (the usage snippet); None shows a placeholder-free local example.
        license, language: the card's metadata.
        description: an optional paragraph under the title.
        limitations: limitations specific to this run, added to the generic ones.
        tags: extra Hub tags.
        wise_ft_weight: the weight of the fine-tuned model in the saved WiSE-FT average, or None.
        kind: "retriever" (a bi-encoder) or "ranker" (a cross-encoder re-ranking ``retriever``'s top candidates).
        retriever: the retriever a ranker's results were measured behind (its Hub id, or how it is named).
    """

    model_name: str
    base_model: str
    method: str
    loss_name: str
    loss_config: dict[str, Any]
    citations: list[str]
    data: DataSummary
    evaluations: list[EvalSummary]
    baseline: str | None = None
    base_row: str | None = None
    training_args: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [42])
    repo_id: str | None = None
    license: str | None = "apache-2.0"
    language: list[str] = field(default_factory=lambda: ["en", "code"])
    description: str = ""
    limitations: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    wise_ft_weight: float | None = None
    kind: str = "retriever"
    retriever: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"RunSummary.kind must be one of {KINDS}, got {self.kind!r}.")
        if isinstance(self.data, Mapping):
            self.data = DataSummary(**self.data)
        self.evaluations = [EvalSummary(**e) if isinstance(e, Mapping) else e for e in self.evaluations]
        if isinstance(self.citations, str):
            self.citations = [self.citations]
        if self.baseline == self.method:
            self.baseline = None  # a run is never its own baseline
        for evaluation in self.evaluations:
            if self.method not in evaluation.results:
                raise ValueError(f"RunSummary.method={self.method!r} has no row in the results on {evaluation.name!r}; "
                                 f"rows: {sorted(evaluation.results)}.")
            for row, metrics in evaluation.results.items():
                for metric, value in metrics.items():
                    values = as_values(value)
                    if not values or not all(is_number(v) and math.isfinite(v) for v in values):
                        raise ValueError(f"{evaluation.name}: results[{row!r}][{metric!r}] must be a finite number "
                                         f"or a list of them: {value!r}")
                    if len(values) > 1 and len(values) != len(self.seeds):
                        raise ValueError(f"{evaluation.name}: results[{row!r}][{metric!r}] has {len(values)} values "
                                         f"but there are {len(self.seeds)} seeds {self.seeds}; give one value per seed.")
        for role in ("baseline", "base_row"):
            row = getattr(self, role)
            if row is not None and not any(row in e.results for e in self.evaluations):
                raise ValueError(f"RunSummary.{role}={row!r} has no row in any evaluation.")
        if self.wise_ft_weight is not None and not 0.0 <= self.wise_ft_weight <= 1.0:
            raise ValueError(f"RunSummary.wise_ft_weight must lie in [0, 1], got {self.wise_ft_weight!r}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe_loss(loss) -> dict[str, Any]:
    """The loss fields of a :class:`RunSummary` from any sentence-transformers-style loss object.

    ``RunSummary(**describe_loss(loss), ...)``: the loss's name, ``get_config_dict()`` (a model inside it, such as
    ``GISTEmbedLoss``'s guide, named by its Hub id or class) and its own ``citation``. The name is the class name,
    unless the loss says it computes a better-known objective under another name (``loss.objective_name``:
    ``SoftInfoNCELoss(model, None)`` is InfoNCE, and cites InfoNCE's paper).
    """
    citation = getattr(loss, "citation", None)
    config = loss.get_config_dict() if callable(getattr(loss, "get_config_dict", None)) else {}
    return {
        "loss_name": getattr(loss, "objective_name", None) or type(loss).__name__,
        "loss_config": {key: _config_value(value) for key, value in dict(config).items()},
        "citations": [citation] if citation else [],
    }


def _config_value(value):
    """A model in a loss config by its name (a card holds no module repr); every other value as it is."""
    if not callable(getattr(value, "named_parameters", None)):  # not a torch module
        return value
    card_data = getattr(value, "model_card_data", None)
    name = getattr(card_data, "base_model", None) or getattr(card_data, "model_id", None)
    return name or type(value).__name__


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy scalars count, True does not


def as_values(value) -> list[float]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def saved_value(value) -> float:
    """The saved weights' number: the value, or the first seed's (the saved model is the first seed's)."""
    return float(as_values(value)[0])


def mean_std(value) -> tuple[float, float | None]:
    """Mean and sample standard deviation over seeds (None for a single value)."""
    values = [float(v) for v in as_values(value)]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def format_value(value) -> str:
    mean, std = mean_std(value)
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def metric_label(metric: str) -> str:
    """"mrr@1000" -> "MRR@1000", "dedup_recall@5" -> "Recall@5 (dedup)"; metric ids stay as they are in the metadata."""
    dedup = metric.startswith("dedup_")
    name, at, k = metric.removeprefix("dedup_").partition("@")
    pretty = {"mrr": "MRR", "ndcg": "NDCG", "map": "MAP", "recall": "Recall", "precision": "Precision"}
    return pretty.get(name.lower(), name) + at + k + (" (dedup)" if dedup else "")
