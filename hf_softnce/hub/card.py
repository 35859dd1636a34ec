"""The model card: metadata (huggingface_hub ``ModelCardData`` with a ``model-index``) and the markdown body.

Like huggingface_hub's ``repocard``, this module only renders; writing a folder and uploading live elsewhere.
The metadata starts from sentence-transformers' own card data (``model.model_card_data``: its tags, the base model
it recorded on load, the framework versions), so the card agrees with what sentence-transformers knows, but the
model-index holds only the saved weights' numbers, each with the corpus size it was ranked against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from hf_softnce.hub.public import plain, public_values
from hf_softnce.hub.summary import (
    COSQA_DATASET_ID,
    RunSummary,
    format_value,
    mean_std,
    metric_label,
    saved_value,
)

# Model-index task: the Hub has no "code search" task id; retrieval is the closest, named for humans.
TASK_TYPE = "retrieval"
TASK_NAME = "Code Search"
TEMPLATE = "model_card.md.j2"
# What sentence-transformers' stock card says when it knows nothing; a published card must never show these.
STOCK_CARD_PLACEHOLDERS = (
    "sentence_transformers_model_id",
    "Unnamed Dataset",
    "This is a sentence-transformers model trained.",
)
# Pipeline and tags by kind of model, as sentence-transformers gives them to a bi-encoder and a cross-encoder.
PIPELINE_TAGS = {"retriever": "sentence-similarity", "ranker": "text-ranking"}
BASE_TAGS = {
    "retriever": ["sentence-transformers", "sentence-similarity", "feature-extraction", "code-search", "hf_softnce"],
    "ranker": ["sentence-transformers", "cross-encoder", "reranker", "text-ranking", "code-search", "hf_softnce"],
}

SENTENCE_BERT_CITATION = """@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    month = "11",
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/1908.10084",
}"""

# Cited when the card's model trained or was evaluated on CoSQA, and when its weights are a WiSE-FT average.
COSQA_CITATION = """@inproceedings{huang-etal-2021-cosqa,
    title = "{C}o{SQA}: 20,000+ Web Queries for Code Search and Question Answering",
    author = "Huang, Junjie and Tang, Duyu and Shou, Linjun and Gong, Ming and Xu, Ke and Jiang, Daxin and
      Zhou, Ming and Duan, Nan",
    booktitle = "Proceedings of the 59th Annual Meeting of the Association for Computational Linguistics",
    year = "2021",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2021.acl-long.442",
}"""
WISE_FT_CITATION = """@inproceedings{wortsman2022robust,
    title = "Robust fine-tuning of zero-shot models",
    author = "Wortsman, Mitchell and Ilharco, Gabriel and Kim, Jong Wook and Li, Mike and Kornblith, Simon and
      Roelofs, Rebecca and Lopes, Raphael Gontijo and Hajishirzi, Hannaneh and Farhadi, Ali and Namkoong, Hongseok
      and Schmidt, Ludwig",
    booktitle = "Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)",
    year = "2022",
    url = "https://arxiv.org/abs/2109.01903",
}"""


def card_citations(summary: RunSummary) -> list[str]:
    """The loss's citations, then CoSQA's (trained or evaluated on it), WiSE-FT's (averaged weights) and
    Sentence-BERT's, each once."""
    on_cosqa = COSQA_DATASET_ID in summary.data.datasets or any(
        evaluation.dataset_id == COSQA_DATASET_ID for evaluation in summary.evaluations)
    extra = [COSQA_CITATION if on_cosqa else "", WISE_FT_CITATION if summary.wise_ft_weight is not None else ""]
    cited = [*summary.citations, *extra, SENTENCE_BERT_CITATION]
    return list(dict.fromkeys(c.strip() for c in cited if c and c.strip()))


def is_hub_id(name: str | None) -> bool:
    if not name or name.startswith((".", "/", "~")) or Path(name).exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return "/" in name


def eval_results(summary: RunSummary) -> list[EvalResult]:
    """The saved weights' results as huggingface_hub EvalResults, one per (evaluation set, metric); each names
    the corpus it was ranked against, in the dataset's name and args and in the metric's name."""
    results, seen = [], {}
    for evaluation in summary.evaluations:
        # huggingface_hub groups a model-index by task, dataset type, config and split (not by name): two sets
        # sharing them would be merged into one and their numbers mixed up.
        identity = (evaluation.dataset_id or _slug(evaluation.name), evaluation.split)
        if identity in seen:
            raise ValueError(f"Evaluations {seen[identity]!r} and {evaluation.name!r} share dataset {identity[0]!r} "
                             f"and split {identity[1]!r}: give each its own split name.")
        seen[identity] = evaluation.name
        for metric, value in evaluation.results[summary.method].items():
            results.append(EvalResult(
                task_type=TASK_TYPE,
                task_name=TASK_NAME,
                dataset_type=evaluation.dataset_id or _slug(evaluation.name),
                dataset_name=f"{evaluation.name} ({evaluation.over})",
                dataset_split=evaluation.split,
                dataset_args={**evaluation.args, "queries": evaluation.queries, "corpus_size": evaluation.corpus_size},
                metric_type=metric,
                metric_name=f"{metric_label(metric)} over {evaluation.corpus_size:,} codes",
                metric_value=saved_value(value),
            ))
    return results


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def base_model_id(summary: RunSummary, model=None) -> str | None:
    """The base model's Hub id: the one sentence-transformers recorded when it loaded the base from the Hub,
    else the summary's when it is a Hub id. A local path is never metadata (the Hub rejects it)."""
    recorded = getattr(getattr(model, "model_card_data", None), "base_model", None)
    for candidate in (summary.base_model, recorded):
        if is_hub_id(candidate):
            return candidate
    return None


def card_data(summary: RunSummary, model=None) -> ModelCardData:
    """The card's YAML metadata: library, pipeline, tags, base model, training datasets and the model-index."""
    st_data = getattr(model, "model_card_data", None)
    st_tags = [t for t in getattr(st_data, "tags", None) or [] if not t.startswith("loss:")]
    tags = list(dict.fromkeys([*BASE_TAGS[summary.kind], *st_tags, f"loss:{summary.loss_name}", *summary.tags]))
    base = base_model_id(summary, model)
    revision = getattr(st_data, "base_model_revision", None) if base and base == getattr(st_data, "base_model", None) else None
    metrics = list(dict.fromkeys(m for e in summary.evaluations for m in e.results[summary.method]))
    return ModelCardData(
        language=summary.language,
        license=summary.license,
        library_name="sentence-transformers",
        pipeline_tag=PIPELINE_TAGS[summary.kind],
        tags=tags,
        base_model=base,
        base_model_revision=revision,
        datasets=list(summary.data.datasets) or None,  # training data only; evaluation sets are in the model-index
        metrics=metrics or None,
        model_name=summary.model_name,
        eval_results=eval_results(summary) or None,
    )


def _template_text(name: str) -> str:
    """A template from the source checkout next to this package, else from the installed ``hf_softnce.model_cards``.

    The checkout comes first: an editable install maps ``hf_softnce.model_cards`` to whichever checkout was
    installed, which need not be the one being run.
    """
    from importlib import resources

    beside = Path(__file__).resolve().parents[2] / "model_cards" / name
    if beside.is_file():
        return beside.read_text(encoding="utf-8")
    return resources.files("hf_softnce.model_cards").joinpath(name).read_text(encoding="utf-8")


def _cell(value) -> str:
    """A value safe inside a markdown table cell: pipes escaped, newlines flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


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
    return None if weighter in (None, "UniformWeighter") else str(weighter)  # uniform weights: nothing weighted


def _generic_limitations(summary: RunSummary) -> list[str]:
    languages = ", ".join(summary.data.languages) or "the training languages"
    return [
        f"Trained and evaluated on {languages} code only; other programming languages were not evaluated.",
        "Every score is measured against the corpus size stated beside it; a larger codebase to search makes "
        "every metric lower, and other codebases give other numbers.",
        "Inputs longer than the model's maximum sequence length are truncated: long functions are "
        "represented by their beginning only.",
    ]


def _model_facts(model) -> tuple[list[tuple[str, Any]], str]:
    embedding_dimension = getattr(model, "get_embedding_dimension", None)
    facts = [
        # A bi-encoder's max_seq_length; a cross-encoder's max_length (query and code together).
        ("Maximum sequence length", getattr(model, "max_seq_length", None) or getattr(model, "max_length", None)),
        ("Embedding dimension", embedding_dimension() if embedding_dimension else None),
        ("Similarity function", getattr(model, "similarity_fn_name", None) or ("cosine" if embedding_dimension else None)),
    ]
    versions = getattr(getattr(model, "model_card_data", None), "version", None) or {}
    facts += [(f"{name} version", version) for name, version in versions.items()]
    return [(name, value) for name, value in facts if value is not None], str(model)


def _with_training_length(facts: list[tuple[str, Any]], training_args: dict) -> list[tuple[str, Any]]:
    """A model trained on shorter texts than it reads says so beside its maximum sequence length: the training
    arguments that also carry it sit folded away, and a reader of the model details would take 256 for both."""
    trained = (training_args or {}).get("max_seq_length")
    lengths = [index for index, (name, _) in enumerate(facts) if name == "Maximum sequence length"]
    if not lengths or not trained or trained == facts[lengths[0]][1]:
        return facts
    at = lengths[0] + 1
    return facts[:at] + [("Training sequence length", f"{trained} (texts were cut to it in training)")] + facts[at:]


def _evaluation_tables(summary: RunSummary) -> list[dict[str, Any]]:
    """Per evaluation set: every row's numbers (the base model's beside this model's) and, when a different
    baseline was trained, the side-by-side differences."""
    tables = []
    for evaluation in summary.evaluations:
        metrics = list(evaluation.results[summary.method])
        order = [r for r in (summary.base_row, summary.baseline) if r in evaluation.results]
        order += [r for r in evaluation.results if r not in order and r != summary.method] + [summary.method]
        rows = [(row, row == summary.method, [format_value(evaluation.results[row][m]) if m in evaluation.results[row]
                                              else "–" for m in metrics]) for row in order]
        ours, base = evaluation.results[summary.method], evaluation.results.get(summary.baseline or "", {})
        side_by_side = [
            (m, format_value(base[m]), format_value(ours[m]), f"{mean_std(ours[m])[0] - mean_std(base[m])[0]:+.4f}")
            for m in metrics if m in base
        ]
        columns = [key for key in dict.fromkeys(k for row in evaluation.intervals for k in row) if key != "name"]
        # In the results table's order, this model marked the same way.
        by_name = {row["name"]: row for row in evaluation.intervals}
        named = [name for name in order if name in by_name] + [name for name in by_name if name not in order]
        intervals = [(name, name == summary.method, [_interval_cell(by_name[name].get(key)) for key in columns])
                     for name in named]
        tables.append({"e": evaluation, "metrics": metrics, "rows": rows, "side_by_side": side_by_side,
                       "interval_columns": [_interval_label(key) for key in columns], "intervals": intervals})
    return tables


def _interval_cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        diff, lo, hi = value
        cell = f"{diff:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        # bold: the interval as shown excludes 0 (a bound that rounds to 0.0000 does not)
        return f"**{cell}**" if round(lo, 4) > 0 or round(hi, 4) < 0 else cell
    return format_value(value)


# The rows a paired interval is taken against, by the key suffix ``delta_vs_<row>`` uses.
INTERVAL_REFERENCES = {"base": "base", "infonce": "InfoNCE"}


def _interval_label(key: str) -> str:
    if key.startswith("delta_vs_"):
        reference = key[len("delta_vs_"):]
        return f"Δ vs {INTERVAL_REFERENCES.get(reference, reference)} (95% CI)"
    return metric_label(key) if "@" in key else key.upper() if key == "mrr" else key


def render_model_card(summary: RunSummary, model=None) -> str:
    """The README.md of the model repository: YAML metadata (with model-index) and the markdown card.

    ``model`` (optional) adds its sentence-transformers card data (tags, recorded base model, versions), the
    architecture, embedding dimension and maximum sequence length.
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
    template = environment.from_string(_template_text(TEMPLATE))

    base = base_model_id(summary, model)
    base_model_link = f"[{base}](https://huggingface.co/{base})" if base else "a local model (not on the Hub)"
    model_facts, architecture = _model_facts(model) if model is not None else ([], "")
    model_facts = _with_training_length(model_facts, summary.training_args)
    citations = card_citations(summary)
    retriever_link = None
    if summary.retriever:
        retriever_link = (f"[{summary.retriever}](https://huggingface.co/{summary.retriever})"
                          if is_hub_id(summary.retriever) else "a local retriever (not on the Hub)")
    content = template.render(
        card_data=card_data(summary, model).to_yaml(),
        retriever_link=retriever_link,
        s=summary,
        repo_id=summary.repo_id,
        base_model_link=base_model_link,
        weighter=_weighter_name(summary.loss_config),
        loss_rows=_flatten(public_values(plain(summary.loss_config))),
        model_facts=model_facts,
        architecture=architecture,
        training_args_json=json.dumps(public_values(plain(summary.training_args)), indent=2, sort_keys=True),
        evaluations=_evaluation_tables(summary),
        several_seeds=len(summary.seeds) > 1,
        limitations=[*_generic_limitations(summary), *summary.limitations],
        citations=citations,
    )
    # Parse it back with huggingface_hub: invalid metadata fails here, not on the Hub.
    return str(ModelCard(content))
