"""Model cards and the Hugging Face Hub: render a run's card, save the exact folder to upload, check access, push.

A training recipe uses this module in three places::

    repo_id = preflight_push(args.push_to_hub, private=args.private)   # first thing: fail before training
    ...train, evaluate...
    summary = RunSummary(...)                                           # what the run did and measured
    folder = save_run_folder(model, summary, output_dir / "hub")        # the exact folder that is uploaded
    push_run(folder, repo_id, private=args.private)

The card, the ``model-index`` metadata (huggingface_hub's ``ModelCardData`` / ``EvalResult``), and the upload
(``HfApi``) all go through huggingface_hub, so the Hub parses what we write exactly as it parses its own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
EVAL_RESULTS_FILE = "eval_results.json"
TRAINING_CONFIG_FILE = "training_config.yaml"

# Model-index task: the Hub has no "code search" task id; retrieval is the closest, named for humans.
TASK_TYPE = "retrieval"
TASK_NAME = "Code Search"

# Weight files that unpickle on load. A pushed model must carry safetensors only.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# Hugging Face user access tokens: "hf_" followed by 34 letters/digits.
TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{34}(?![A-Za-z0-9])")
LOGIN_HELP = (
    "Log in with `hf auth login`, or set the HF_TOKEN environment variable "
    "to a token with write access from https://huggingface.co/settings/tokens."
)

SENTENCE_BERT_CITATION = """@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    month = "11",
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/1908.10084",
}"""


class HubAccessError(RuntimeError):
    """No usable token, or the token cannot write to the target repository."""


class RunFolderError(ValueError):
    """The folder must not be uploaded as it is (missing card, pickle weights, remote code, a token...)."""


# --------------------------------------------------------------------------------------------- the run summary


@dataclass
class DataSummary:
    """The training and evaluation data, as the card reports it.

    Args:
        sources: where the data came from, one human-readable line each (a dataset id, a URL, "37 PyPI packages").
        splits: rows per split, e.g. ``{"train": 12000, "valid": 500, "test": 1000}``.
        counts: other named counts worth reporting (``{"functions": 14000, "duplicate groups": 310}``).
        description: how the data was built and split (one paragraph, markdown).
        datasets: Hub dataset ids, for the card's ``datasets`` metadata (only real Hub ids).
        languages: programming languages of the code.
    """

    sources: list[str]
    splits: dict[str, int]
    counts: dict[str, int] = field(default_factory=dict)
    description: str = ""
    datasets: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=lambda: ["python"])


# CoSQA's queries and codebase on the Hub, as the CoIR benchmark publishes them (looked up: the
# CoIR-Retrieval organisation's cosqa-queries-corpus / cosqa-qrels datasets); the model-index must name a Hub id.
COSQA_DATASET_ID = "CoIR-Retrieval/cosqa-queries-corpus"


@dataclass
class RunSummary:
    """Everything the model card, ``eval_results.json`` and ``training_config.yaml`` say about one training run.

    Args:
        model_name: a pretty name for the model (the ``model-index`` name), e.g. "MiniLM-L6 Soft-InfoNCE (BM25)".
        base_model: the model fine-tuned, ideally its Hub id ("sentence-transformers/all-MiniLM-L6-v2"); a local
            path is shown in the text but left out of the ``base_model`` metadata, which must be a Hub id.
        method: this model's row in ``results`` (e.g. "SoftInfoNCE (BM25)").
        loss_name: the loss class name (``type(loss).__name__``); also the tag ``loss:<name>``.
        loss_config: ``loss.get_config_dict()``: the weighter and its hyperparameters.
        citations: BibTeX entries of the papers used (``loss.citation``; several entries per string are fine).
        data: a :class:`DataSummary`.
        results: ``{method: {metric: value}}`` on the evaluation split. Metric names as the evaluation module
            writes them (``"mrr@1000"``, ``"recall@1"``, ``"ndcg@10"``), values in [0, 1]. A value is a float, or
            a list with one float per seed (same order as ``seeds``): the card shows mean ± std, the
            ``model-index`` the mean. Must contain ``method`` and ``baseline``.
        baseline: the results row to compare against, side by side (InfoNCE = MultipleNegativesRankingLoss).
        eval_dataset: the evaluation dataset's id (``model-index`` dataset type), e.g. "code_search_net".
        eval_split: the split the results were measured on (select on valid, report test).
        eval_dataset_name: a pretty name for the evaluation dataset; defaults to ``eval_dataset``.
        training_args: the training arguments (``args.to_dict()``); keys naming a token are redacted.
        seeds: the seed(s) of the run(s) behind ``results``.
        repo_id: where the model will live; used in the usage snippet ("path/to/model" when unknown).
        license: the model's license id for the metadata (e.g. "apache-2.0"); None leaves it out.
        description: an optional paragraph under the title.
        limitations: limitations specific to this run, added to the generic ones.
        tags: extra Hub tags.
    """

    model_name: str
    base_model: str
    method: str
    loss_name: str
    loss_config: dict[str, Any]
    citations: list[str]
    data: DataSummary
    results: dict[str, dict[str, float | list[float]]]
    baseline: str = "InfoNCE"
    eval_dataset: str = "code-search"
    eval_split: str = "test"
    eval_dataset_name: str | None = None
    training_args: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [42])
    repo_id: str | None = None
    license: str | None = None
    description: str = ""
    limitations: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    wise_ft_weight: float | None = None
    interval_rows: list[dict[str, Any]] = field(default_factory=list)
    real_query_results: dict[str, float] = field(default_factory=dict)
    real_query_dataset: str = COSQA_DATASET_ID
    real_query_split: str = "validation"

    def __post_init__(self) -> None:
        if isinstance(self.data, Mapping):
            self.data = DataSummary(**self.data)
        if isinstance(self.citations, str):
            self.citations = [self.citations]
        for role, name in (("method", self.method), ("baseline", self.baseline)):
            if name not in self.results:
                raise ValueError(f"RunSummary.{role}={name!r} has no row in results; rows: {sorted(self.results)}.")
        for method, metrics in self.results.items():
            for metric, value in metrics.items():
                values = _as_values(value)
                if not values or not all(_is_number(v) and math.isfinite(v) for v in values):
                    raise ValueError(f"results[{method!r}][{metric!r}] must be a finite number or list of them: {value!r}")
                if len(values) > 1 and len(values) != len(self.seeds):
                    raise ValueError(
                        f"results[{method!r}][{metric!r}] has {len(values)} values but there are "
                        f"{len(self.seeds)} seeds {self.seeds}; give one value per seed."
                    )

        if self.wise_ft_weight is not None and not 0.0 <= self.wise_ft_weight <= 1.0:
            raise ValueError(f"RunSummary.wise_ft_weight must lie in [0, 1], got {self.wise_ft_weight!r}.")
        for i, row in enumerate(self.interval_rows):
            if "name" not in row:
                raise ValueError(f"RunSummary.interval_rows[{i}] has no 'name': {row!r}.")
            for key, value in row.items():
                if key.startswith("delta_") and value is not None and (
                    not isinstance(value, (list, tuple)) or len(value) != 3 or not all(_is_number(v) for v in value)
                ):
                    raise ValueError(f"RunSummary.interval_rows[{i}][{key!r}] must be (diff, lo, hi), got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe_loss(loss) -> dict[str, Any]:
    """The loss fields of a :class:`RunSummary` from a sentence-transformers-style loss object.

    ``RunSummary(**describe_loss(loss), ...)``: class name, ``get_config_dict()``, and ``citation``.
    """
    citation = getattr(loss, "citation", None)
    return {
        "loss_name": type(loss).__name__,
        "loss_config": dict(loss.get_config_dict()) if hasattr(loss, "get_config_dict") else {},
        "citations": [citation] if citation else [],
    }


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy scalars count, True does not


def _as_values(value) -> list[float]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def _mean_std(value) -> tuple[float, float | None]:
    """Mean and sample standard deviation over seeds (None for a single value)."""
    values = [float(v) for v in _as_values(value)]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _format_value(value) -> str:
    mean, std = _mean_std(value)
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def metric_label(metric: str) -> str:
    """"mrr@1000" -> "MRR@1000", "dedup_recall@5" -> "Recall@5 (dedup)"; metric ids stay as they are in the metadata."""
    dedup = metric.startswith("dedup_")
    name, at, k = metric.removeprefix("dedup_").partition("@")
    pretty = {"mrr": "MRR", "ndcg": "NDCG", "map": "MAP", "recall": "Recall", "precision": "Precision"}
    return pretty.get(name.lower(), name) + at + k + (" (dedup)" if dedup else "")


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested loss configs (the weighter's own dict) as dotted rows: {"weighter": {"k1": 1.2}} -> {"weighter.k1": 1.2}."""
    rows = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            rows.update(_flatten(value, f"{prefix}{key}."))
        else:
            rows[f"{prefix}{key}"] = value
    return rows


def _weighter_name(loss_config: Mapping[str, Any]) -> str | None:
    weighter = loss_config.get("weighter")
    if isinstance(weighter, Mapping):
        weighter = weighter.get("name")
    return None if weighter is None else str(weighter)


# --------------------------------------------------------------------------------------------------- the card


def eval_results(summary: RunSummary) -> list[EvalResult]:
    """This model's results as huggingface_hub EvalResults: one per metric, the mean over seeds."""
    return [
        EvalResult(
            task_type=TASK_TYPE,
            task_name=TASK_NAME,
            dataset_type=summary.eval_dataset,
            dataset_name=summary.eval_dataset_name or summary.eval_dataset,
            dataset_split=summary.eval_split,
            metric_type=metric,
            metric_name=metric_label(metric),
            metric_value=_mean_std(value)[0],
        )
        for metric, value in summary.results[summary.method].items()
    ] + [
        EvalResult(
            task_type=TASK_TYPE,
            task_name=TASK_NAME,
            dataset_type=summary.real_query_dataset,
            dataset_name="CoSQA",
            dataset_split=summary.real_query_split,
            metric_type=metric,
            metric_name=metric_label(metric),
            metric_value=float(value),
        )
        for metric, value in summary.real_query_results.items()
    ]


def _is_hub_id(name: str) -> bool:
    if name.startswith((".", "/", "~")) or Path(name).exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return "/" in name


def card_data(summary: RunSummary) -> ModelCardData:
    """The card's YAML metadata: library, pipeline, tags, base model, datasets and the model-index."""
    tags = [
        "sentence-transformers",
        "sentence-similarity",
        "feature-extraction",
        "code-search",
        "hf_softnce",
        f"loss:{summary.loss_name}",
        *summary.tags,
    ]
    return ModelCardData(
        language=["en", "code"],
        license=summary.license,
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=tags,
        base_model=summary.base_model if _is_hub_id(summary.base_model) else None,
        datasets=list(dict.fromkeys([*summary.data.datasets, *([summary.real_query_dataset] if summary.real_query_results else [])])) or None,
        metrics=list(summary.results[summary.method]),
        model_name=summary.model_name,
        eval_results=eval_results(summary),
    )


def _template_text(name: str) -> str:
    """A template from the source checkout next to this package, else from the installed ``hf_softnce.model_cards``.

    The checkout comes first: an editable install maps ``hf_softnce.model_cards`` to whichever checkout was
    installed, which need not be the one being run.
    """
    from importlib import resources

    beside = Path(__file__).resolve().parents[1] / "model_cards" / name
    if beside.is_file():
        return beside.read_text(encoding="utf-8")
    return resources.files("hf_softnce.model_cards").joinpath(name).read_text(encoding="utf-8")


def _cell(value) -> str:
    """A value safe inside a markdown table cell: pipes escaped, newlines flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _generic_limitations(summary: RunSummary) -> list[str]:
    languages = ", ".join(summary.data.languages) or "the training languages"
    eval_name = summary.eval_dataset_name or summary.eval_dataset
    return [
        f"Trained and evaluated on {languages} code only; other programming languages were not evaluated.",
        f"The scores are measured on {eval_name} ({summary.eval_split} split); expect different numbers on "
        "other codebases, and a larger corpus to search makes every metric lower.",
        "Training queries are mostly docstrings; real search queries are shorter and noisier.",
        "Inputs longer than the model's maximum sequence length are truncated: long functions are "
        "represented by their beginning only.",
    ]


def _model_facts(model) -> tuple[list[tuple[str, Any]], str]:
    facts = [
        ("Maximum sequence length", model.max_seq_length),
        ("Embedding dimension", model.get_embedding_dimension()),
        ("Similarity function", getattr(model, "similarity_fn_name", None) or "cosine"),
    ]
    return [(name, value) for name, value in facts if value is not None], str(model)


def render_model_card(summary: RunSummary, model=None) -> str:
    """The README.md of the model repository: YAML metadata (with model-index) and the markdown card.

    ``model`` (optional) adds the architecture, embedding dimension and maximum sequence length.
    """
    import jinja2

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,  # a field the template needs but the summary lacks must fail, not vanish
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # markdown, not HTML
    )
    environment.filters["cell"] = _cell
    environment.filters["metric_label"] = metric_label
    template = environment.from_string(_template_text("model_card.md.j2"))

    metrics = list(dict.fromkeys(metric for row in summary.results.values() for metric in row))
    results_rows = [
        (method, [_format_value(row[m]) if m in row else "–" for m in metrics]) for method, row in summary.results.items()
    ]
    ours, base = summary.results[summary.method], summary.results[summary.baseline]
    side_by_side = [
        (m, _format_value(base[m]), _format_value(ours[m]), f"{_mean_std(ours[m])[0] - _mean_std(base[m])[0]:+.4f}")
        for m in metrics
        if m in ours and m in base
    ]
    model_facts, architecture = _model_facts(model) if model is not None else ([], "")
    base_model_link = (
        f"[{summary.base_model}](https://huggingface.co/{summary.base_model})"
        if _is_hub_id(summary.base_model)
        else f"`{summary.base_model}`"
    )
    citations = list(dict.fromkeys(c.strip() for c in [*summary.citations, SENTENCE_BERT_CITATION] if c and c.strip()))

    interval_columns = [key for key in dict.fromkeys(k for row in summary.interval_rows for k in row) if key != "name"]
    interval_rows = [
        (row["name"], [_interval_cell(row.get(key)) for key in interval_columns]) for row in summary.interval_rows
    ]
    content = template.render(
        card_data=card_data(summary).to_yaml(),
        interval_columns=[_interval_label(key) for key in interval_columns],
        interval_rows=interval_rows,
        s=summary,
        repo_id=summary.repo_id or "path/to/model",
        base_model_link=base_model_link,
        weighter=_weighter_name(summary.loss_config),
        loss_rows=_flatten(_plain(summary.loss_config)),
        model_facts=model_facts,
        architecture=architecture,
        training_args_json=json.dumps(_redact_secrets(_plain(summary.training_args)), indent=2, sort_keys=True),
        metrics=metrics,
        results_rows=results_rows,
        several_seeds=len(summary.seeds) > 1,
        side_by_side=side_by_side,
        limitations=[*_generic_limitations(summary), *summary.limitations],
        citations=citations,
    )
    if model is not None and getattr(model, "model_card_data", None) is not None:
        content = _extend_sentence_transformers_card(content, model)
    # Parse it back with huggingface_hub: invalid metadata fails here, not on the Hub.
    return str(ModelCard(content))


def _interval_cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        diff, lo, hi = value
        return f"{diff:+.4f} [{lo:+.4f}, {hi:+.4f}]"
    return _format_value(value)


def _interval_label(key: str) -> str:
    if key.startswith("delta_vs_"):
        return f"Δ vs {key[len('delta_vs_'):]} (95% CI)"
    return metric_label(key) if "@" in key else key.upper() if key == "mrr" else key


def _extend_sentence_transformers_card(content: str, model) -> str:
    """sentence-transformers' own card (widget, datasets, training logs and arguments, framework versions) with
    hf_softnce's sections in front; its metadata gains our model-index, tags and datasets."""
    from sentence_transformers.base.model_card import generate_model_card

    ours = ModelCard(content)
    theirs = ModelCard(generate_model_card(model))
    metadata = theirs.data.to_dict()
    for key, value in ours.data.to_dict().items():
        if key in ("tags", "datasets") and metadata.get(key):
            metadata[key] = list(dict.fromkeys([*metadata[key], *value]))
        elif key not in ("widget",):
            metadata[key] = value
    body = ours.text.rstrip() + "\n\n---\n\n# sentence-transformers model card\n\n" + theirs.text.lstrip()
    return f"---\n{yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)}---\n{body}"


# ----------------------------------------------------------------------------------------- the upload folder


def _plain(value):
    """JSON/YAML-safe copy: numbers, strings, lists and dicts kept; anything else (functions, enums) as text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if value is None or type(value) in (bool, int, float, str):  # exact types: YAML cannot dump numpy subclasses
        return value
    if isinstance(value, numbers.Integral):  # numpy integers and floats, as metrics often return them
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    return str(value)


def _redact_secrets(value):
    """Replace values under keys that name a token (``hub_token``, ``token``) — training args carry them."""
    if isinstance(value, dict):
        return {
            k: ("<redacted>" if re.search(r"(^|_)token$", k) and isinstance(v, str) and v else _redact_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_secrets(v) for v in value]
    return value


def save_run_folder(model, summary: RunSummary, out_dir: str | Path) -> Path:
    """Write the exact folder :func:`push_run` uploads, and check it.

    Contents: the SentenceTransformer (safetensors weights, ``modules.json``, tokenizer, configs), ``README.md``
    (our card, replacing the one sentence-transformers would write), ``eval_results.json`` (every method's
    results, per seed) and ``training_config.yaml`` (base model, loss, data, training arguments, seeds).
    ``out_dir`` must be new or empty, so no stale file from another run is uploaded with this one.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; save the run into a new folder so nothing stale gets uploaded.")
    out_dir.mkdir(parents=True, exist_ok=True)

    model.save(str(out_dir), create_model_card=False, safe_serialization=True)
    (out_dir / CARD_FILE).write_text(render_model_card(summary, model), encoding="utf-8")

    eval_payload = {
        "model_name": summary.model_name,
        "method": summary.method,
        "baseline": summary.baseline,
        "task": {"type": TASK_TYPE, "name": TASK_NAME},
        "dataset": {"type": summary.eval_dataset, "name": summary.eval_dataset_name, "split": summary.eval_split},
        "seeds": list(summary.seeds),
        "results": _plain(summary.results),
    }
    (out_dir / EVAL_RESULTS_FILE).write_text(json.dumps(eval_payload, indent=2) + "\n", encoding="utf-8")

    training_config = _redact_secrets(
        _plain(
            {
                "base_model": summary.base_model,
                "method": summary.method,
                "loss": {"name": summary.loss_name, "config": summary.loss_config},
                "data": summary.data,
                "seeds": summary.seeds,
                "training_args": summary.training_args,
            }
        )
    )
    (out_dir / TRAINING_CONFIG_FILE).write_text(yaml.safe_dump(training_config, sort_keys=False), encoding="utf-8")

    stored_token = get_token()
    check_run_folder(out_dir, secrets=[stored_token] if stored_token else ())
    return out_dir


def check_run_folder(run_dir: str | Path, secrets: Iterable[str] = ()) -> list[str]:
    """Refuse a folder that would not load with plain ``SentenceTransformer(repo_id)`` or that leaks a token.

    Checks: README.md with a parseable model-index, modules.json, safetensors weights and no pickle weights,
    no remote code (every module a sentence-transformers class, no ``auto_map``, no ``.py`` files), and no
    token: neither the given ``secrets`` nor anything shaped like a Hugging Face token, in any file name or
    file (UTF-8 or UTF-16/32 text, inside gzip/bz2/xz/zip; other compressed formats are refused unread).
    Returns the relative paths of the files, sorted; raises :class:`RunFolderError` listing every problem.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is not a folder.")
    files = sorted(p for p in run_dir.rglob("*") if p.is_file() and ".git" not in p.relative_to(run_dir).parts)
    names = [p.relative_to(run_dir).as_posix() for p in files]
    problems = []

    if CARD_FILE not in names:
        problems.append(f"no {CARD_FILE} (the model card)")
    elif not ModelCard.load(run_dir / CARD_FILE).data.eval_results:
        problems.append(f"{CARD_FILE} has no model-index evaluation results")
    if "modules.json" not in names:
        problems.append("no modules.json: not a saved SentenceTransformer")
    else:
        for module in json.loads((run_dir / "modules.json").read_text(encoding="utf-8")):
            if not module.get("type", "").startswith("sentence_transformers."):
                problems.append(f"module {module.get('type')!r} is not a sentence-transformers class (needs remote code)")
    if not any(name.endswith(".safetensors") for name in names):
        problems.append("no .safetensors weights")
    problems += [f"pickle file {name} (save with safetensors only)" for name in names if name.endswith(PICKLE_SUFFIXES)]
    problems += [f"Python file {name} (would need trust_remote_code)" for name in names if name.endswith(".py")]
    for name in names:
        if name.endswith("config.json") and "auto_map" in json.loads((run_dir / name).read_text(encoding="utf-8")):
            problems.append(f"{name} has an auto_map (would need trust_remote_code)")

    secrets = [secret for secret in secrets if secret]
    for name, path in zip(names, files):
        if _text_holds_token(name, secrets):
            # The name itself is the leak: print it redacted.
            shown = name
            for secret in secrets:
                shown = shown.replace(secret, "<token>")
            problems.append(f"the file name {redact(shown, None)!r} contains a Hugging Face token")
            continue
        found = _holds_token(path, secrets)
        if found:
            problems.append(f"{name} {found}")
    if problems:
        raise RunFolderError(f"Refusing to upload {run_dir}:\n- " + "\n- ".join(problems))
    return names


# Text encodings a token is looked for in: UTF-8/ASCII, and the wide encodings in which each character's
# bytes are interleaved with zeros (a Windows-saved note, a UTF-16 JSON export).
_SCAN_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_ALNUM = "[A-Za-z0-9]"


def _token_patterns() -> list[re.Pattern]:
    patterns = []
    for encoding in _SCAN_ENCODINGS:
        # Each character of "hf_" + 34 alphanumerics, in this encoding, as a regex over bytes.
        pad = re.escape(b"\0" * (len("a".encode(encoding)) - 1))
        alnum = (pad + _ALNUM.encode()) if encoding.endswith("be") else (_ALNUM.encode() + pad)
        prefix = re.escape("hf_".encode(encoding))
        patterns.append(re.compile(prefix + b"(?:" + alnum + b"){34}(?!" + alnum + b")"))
    return patterns


_TOKEN_PATTERNS = _token_patterns()
# Compressed formats whose content is scanned after decompression; the others are refused unread.
_STREAM_COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
_UNREADABLE_COMPRESSIONS = {b"\x28\xb5\x2f\xfd": "zstd", b"7z\xbc\xaf\x27\x1c": "7z", b"Rar!": "rar"}


def _text_holds_token(text: str, secrets: Iterable[str]) -> bool:
    return any(secret in text for secret in secrets) or TOKEN_PATTERN.search(text.encode()) is not None


def _stream_holds_token(handle, needles: list[bytes], chunk_size: int) -> bool:
    """Scan a binary stream in overlapping chunks (big weights are never read whole)."""
    overlap = max([len(n) for n in needles] + [4 * 40])
    tail = b""
    while chunk := handle.read(chunk_size):
        window = tail + chunk
        if any(n in window for n in needles) or any(p.search(window) for p in _TOKEN_PATTERNS):
            return True
        tail = window[-overlap:]
    return False


def _holds_token(path: Path, secrets: Iterable[str], chunk_size: int = 1 << 22) -> str | None:
    """Why ``path`` must not be uploaded, or ``None``: it holds one of ``secrets`` or a token-shaped string,
    as UTF-8 or UTF-16/32 text, raw or inside gzip/bz2/xz/zip compression; or it is compressed in a format
    that cannot be scanned (zstd, 7z, rar, an encrypted zip member), so it is refused unread.
    """
    import bz2
    import gzip
    import lzma
    import zipfile

    needles = sorted({s.encode(encoding) for s in secrets if s for encoding in _SCAN_ENCODINGS}, key=len)
    with path.open("rb") as handle:
        # Raw bytes first: covers plain text, and a gzip header's stored file name.
        if _stream_holds_token(handle, needles, chunk_size):
            return "contains a Hugging Face token"
        handle.seek(0)
        magic = handle.read(8)
    for prefix, name in _UNREADABLE_COMPRESSIONS.items():
        if magic.startswith(prefix):
            return f"is {name}-compressed and cannot be scanned for tokens (upload it uncompressed)"
    openers = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
    for prefix, name in _STREAM_COMPRESSIONS.items():
        if magic.startswith(prefix):
            try:
                with openers[name](path, "rb") as stream:
                    found = _stream_holds_token(stream, needles, chunk_size)
            except (OSError, EOFError, lzma.LZMAError) as error:
                return f"looks {name}-compressed but cannot be decompressed to scan for tokens ({error})"
            return f"contains a Hugging Face token ({name}-compressed)" if found else None
    if magic.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if _text_holds_token(member.filename, secrets):
                        return "contains a Hugging Face token (a zip member's name)"
                    if member.flag_bits & 0x1:
                        return f"holds the encrypted zip member {member.filename!r}, which cannot be scanned for tokens"
                    with archive.open(member) as stream:
                        if _stream_holds_token(stream, needles, chunk_size):
                            return f"contains a Hugging Face token (zip member {member.filename!r})"
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
            return f"looks like a zip archive but cannot be read to scan for tokens ({error})"
    return None


# ----------------------------------------------------------------------------------------------- preflight & push


def redact(text: str, token: str | None) -> str:
    """``text`` with the token replaced, for logs and error messages."""
    text = str(text)
    if token:
        text = text.replace(token, "<token>")
    return TOKEN_PATTERN.sub(b"hf_<redacted>", text.encode()).decode()


def _resolve_token(token: str | None) -> str:
    token = token or get_token()  # HF_TOKEN, then the token stored by `hf auth login`
    if not token:
        raise HubAccessError(f"No Hugging Face token found, so nothing can be pushed. {LOGIN_HELP}")
    return token


def preflight_push(repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Check, before any training, that a run can be pushed to ``repo_id``; return the full ``namespace/name``.

    The token comes from ``token``, else the standard places (``HF_TOKEN``, the stored login). Checks: a token
    exists; the Hub accepts it (``whoami``) and it is not read-only; for an existing repository, write access
    (and, if ``private``, that it is not public: ``create_repo`` never changes an existing repo's visibility);
    for a new one, that its namespace is the user or one of their organisations. Raises :class:`HubAccessError`
    with what to do.
    """
    token = _resolve_token(token)
    if constants.HF_HUB_OFFLINE:
        raise HubAccessError("HF_HUB_OFFLINE is set: pushing needs the network. Unset HF_HUB_OFFLINE to push.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubAccessError(f"Invalid repository id {repo_id!r}: {error}") from error

    api = HfApi(token=token)
    try:
        me = api.whoami()
    except HfHubHTTPError as error:
        raise HubAccessError(f"The Hub did not accept the token: {redact(error, token)} {LOGIN_HELP}") from error
    except Exception as error:  # no network, proxy, DNS: say so before hours of training, whatever the transport
        raise HubAccessError(f"Could not reach the Hugging Face Hub to check the token: {redact(error, token)}") from error

    user = me["name"]
    namespace, _, name = repo_id.rpartition("/")
    namespace = namespace or user
    full_id = f"{namespace}/{name}"
    if me.get("auth", {}).get("accessToken", {}).get("role") == "read":
        raise HubAccessError(f"The token of {user} is read-only; pushing needs a write token. {LOGIN_HELP}")

    try:
        if api.repo_exists(full_id):
            api.auth_check(full_id, write=True)
            if private and not api.repo_info(full_id).private:
                raise HubAccessError(
                    f"{full_id} exists and is public; --private would not change that. Make it private on the Hub "
                    "or push to a new repository."
                )
            return full_id
    except HfHubHTTPError as error:
        raise HubAccessError(f"{user} cannot write to {full_id}: {redact(error, token)}") from error

    orgs = {org["name"]: org.get("roleInOrg") for org in me.get("orgs", [])}
    if namespace != user and namespace not in orgs:
        raise HubAccessError(
            f"Cannot create {full_id}: {namespace!r} is neither your user ({user!r}) nor one of your organisations "
            f"({sorted(orgs) or 'none'})."
        )
    if orgs.get(namespace) == "read":
        raise HubAccessError(f"Cannot create {full_id}: {user} has read-only access to the organisation {namespace}.")
    return full_id


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = "Upload code-search model trained with hf_softnce",
):
    """Upload a folder written by :func:`save_run_folder` (checked again, token scan included) to ``repo_id``.

    Creates the repository if needed (``private`` applies only then) and the branch ``revision`` if given;
    with ``create_pr`` the upload is a pull request against ``revision`` (default: main). Pickle weights left
    in the repository by an earlier upload are deleted in the same commit, so it loads from safetensors only.
    Returns huggingface_hub's ``CommitInfo``. Call :func:`preflight_push` before training, not just before this.
    """
    token = _resolve_token(token)
    files = check_run_folder(run_dir, secrets=[token])

    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
    repo_id = repo_url.repo_id or repo_id
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(run_dir),
        repo_type="model",
        revision=revision,
        create_pr=create_pr,
        commit_message=commit_message,
        delete_patterns=[f"*{suffix}" for suffix in PICKLE_SUFFIXES],
    )
    url = getattr(commit, "pr_url", None) or getattr(commit, "commit_url", None) or repo_url
    logger.info("Uploaded %d files to %s: %s", len(files), repo_id, redact(url, token))
    return commit
