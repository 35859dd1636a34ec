"""Training configuration: YAML files in recipes/configs/, overridable from the command line.

One typed, validated configuration for the recipes, ``hf-softnce train`` and ``hf-softnce main``:

* hf_softnce's own keys (:class:`TrainConfig`'s fields) are checked for type and range when the config is built;
* any other :class:`~sentence_transformers.SentenceTransformerTrainingArguments` field is accepted under its own name,
  checked against that field's type, and validated by building the training arguments once;
* anything else is an error naming the key (and a close match): a typo must never silently fall back to a default.

Every error is a :class:`ConfigError` (a ``ValueError``) with a one-line message naming the file (and line) or
"command line", and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad configuration key or value; the message is one line naming the source and the key."""


def key(default: Any = None, *, ge=None, gt=None, le=None, lt=None, ne=None, choices=None) -> Any:
    """A :class:`TrainConfig` field with its allowed range or choices (checked in ``__post_init__``)."""
    checks = {name: value for name, value in dict(ge=ge, gt=gt, le=le, lt=lt, ne=ne, choices=choices).items()
              if value is not None}
    return field(default=default, metadata={"checks": checks})


@dataclass
class TrainConfig:
    """hf_softnce's own settings, each checked for type and range on construction (``dataclasses.replace`` too).

    Every other :class:`~sentence_transformers.SentenceTransformerTrainingArguments` field (gradient_accumulation_steps,
    lr_scheduler_type, report_to, gradient_checkpointing, hub_model_id, ...) is accepted as a key of the same name and
    kept in ``training_args``; it is handed to the training arguments as is and overrides what hf_softnce would set.
    A new setting is one line: ``name: type = key(default, ge=..., choices=...)``.
    """

    # model and data
    model: str = "default"  # "default" = the packaged all-MiniLM-L6-v2; else a path or Hub id
    data: str = "python"  # python | codesearchnet:<language> | cosqa | advtest | path of a saved DatasetDict
    sources: list[str] = field(default_factory=lambda: ["stdlib"])  # for data=python
    data_dir: str | None = None  # local files for codesearchnet/cosqa/advtest
    max_train_pairs: int | None = key(None, ge=1)
    max_eval_queries: int | None = key(None, ge=1)
    # Training data that looks like real search (hf_softnce.data.augment, hf_softnce.data.conala):
    docstring_rate: float = key(0.0, ge=0, le=1)  # share of codes that keep their docstring, as code sits in a repository
    docstring_part: str = key("rest", choices=("rest", "full"))  # rest: all but the paragraph the query came from
    query_style_rate: float = key(0.0, ge=0, le=1)  # share of docstring queries rewritten the way people type a search
    conala_mix: float = key(0.0, ge=0, le=1)  # share of the pairs from CoNaLa (real StackOverflow questions); 1: CoNaLa alone
    conala_config: str = key("curated", choices=("curated", "mined"))  # neulab/conala; curated falls back to a local copy
    cosqa_dir: str | None = "auto"  # real-query validation set; "auto" looks in ../shared/data/cosqa
    select_on: str = key("auto", choices=("valid", "cosqa", "auto", "none"))  # the set the best checkpoint is chosen on: valid | cosqa | auto (cosqa when present) | none
    cosqa_corpus_size: int | None = key(None, ge=1)  # search a fixed subset (all gold codes + random distractors); None: all 6,267
    # loss
    # infonce: MultipleNegativesRankingLoss with hf_softnce's duplicate masking; mnrl and gist: sentence-transformers'
    # own MultipleNegativesRankingLoss and GISTEmbedLoss as their docs build them (the peers hf_softnce is held against)
    loss: str = key("soft_infonce", choices=("infonce", "soft_infonce", "order_infonce", "mnrl", "gist"))
    weighter: str = key("bm25", choices=("none", "bm25", "embedding", "trained_model", "precomputed"))
    weighter_model: str | None = None  # the frozen encoder of the embedding / trained_model weighters
    alpha: float | None = None
    beta: float | None = None
    weight_temperature: float | None = key(None, gt=0)
    min_weight: float = key(0.1, ge=0)
    variant: str = "soft_infonce"
    order_weight: float = 1.0
    order_scale: float = key(20.0, gt=0)
    scale: float = key(20.0, gt=0)
    mini_batch_size: int | None = key(None, ge=1)  # set to use the GradCache (Cached*) variant, peers included
    # loss=mnrl: MultipleNegativesRankingLoss's hardness weighting (adds strength * stop_grad(cos) to negative logits)
    hardness_mode: str | None = key(None, choices=("in_batch_negatives", "hard_negatives", "all_negatives"))
    hardness_strength: float = key(0.0, ge=0)
    # loss=gist: GISTEmbedLoss's frozen guide ("default": the packaged base model) masks candidates it scores above
    # the positive (minus the margin); GISTEmbedLoss's own defaults otherwise
    guide_model: str | None = None
    gist_margin_strategy: str = key("absolute", choices=("absolute", "relative"))
    gist_margin: float = key(0.0, ge=0)
    gist_temperature: float = key(0.01, gt=0)
    gather_across_devices: bool = False
    mask_duplicates: bool = True
    # Weight-space ensemble with the base model after training (WiSE-FT, Wortsman et al. 2022):
    # theta = (1 - w) * theta_base + w * theta_tuned. Keeps the base model's robustness on queries unlike the
    # training docstrings (real web queries) while keeping most of the in-domain gain. None: no ensembling.
    wise_ft_weight: float | None = key(None, ge=0, le=1)
    evaluate_base: bool = True  # the base model on the same sets too, beside the run's numbers on its card (once per data)
    num_negatives: int = key(0, ge=0)  # hard negatives mined per pair that has none (0: in-batch negatives only)
    # mining (num_negatives > 0 in any training entry point, the ranker's recipe): RankingHardNegativeMiner settings
    miner_model: str | None = None  # the frozen retriever that ranks the corpus; None: `model`
    mining_strategy: str = key("window", choices=("window", "top", "probabilistic"))  # window | top | probabilistic (R2PS: a fixed window of ranks)
    mining_window_start: int = key(0, ge=0)  # first rank used; R2PS's floor(lambda*N) with lambda=0 on CodeSearchNet/CoSQA
    # positive-aware mining (NV-Retriever's TopK-PercPos): candidates scoring above the positive's score times
    # (1 - relative margin), or above it minus the absolute margin, are likely true answers and never negatives
    mining_relative_margin: float | None = key(None, ge=0, lt=1)
    mining_absolute_margin: float | None = key(None, ge=0)
    # order labels (recipes/train_order_infonce.py): label_order's teacher when the data has no `label` column
    order_teacher: str = "bm25"  # bm25 | default | a SentenceTransformer path/Hub id | cross-encoder:<path or id>
    order_refine: bool = True  # OASIS refinement of likely false negatives (above positive, GMM, near-duplicate)
    # ranker (recipes/train_ranker.py): the R2PS cross-encoder and the cascade it is evaluated in
    ranker_model: str = "default"  # base of the CrossEncoder (num_labels=1, new head); "default" = packaged MiniLM
    ranker_head: str = key("stock", choices=("stock", "released"))  # released: R2PS's mean pool, dense-gelu-LN-linear
    ranker_scale: float = key(20.0, gt=0)  # R2PSRankerLoss: score = tanh(logit) * scale (R2PS: 20-40)
    ranker_top_k: int = key(10, ge=0)  # candidates of the retriever the ranker re-scores (R2PS: 10; 0: none)
    ranker_combine: str = key("replace", choices=("replace", "add"))  # replace (R2PS on CodeSearchNet) | add (R2PS on CoSQA)
    ranker_weight: float = key(1.0, gt=0)  # add: cosine + weight * tanh(logit) (R2PS: 1); the main job chooses it
    # the main job's cascade row: the ranker's mined negatives per query and its steps (-1: one epoch); the defaults
    # fit 2 CPU cores (about as long as one retriever row); R2PS trains 31 negatives for epochs on a GPU
    ranker_negatives: int = key(3, ge=1)
    ranker_steps: int = key(80, ge=-1, ne=0)
    # where the cascade's ranker negatives come from (hf_softnce.training.ranker.ranker_negatives): its retriever's
    # top ranks under the mining settings (R2PS), the positive-aware top, R2PS's probabilistic draw, the
    # positive-aware top 1 + random codes, or random codes of the codebase
    ranker_negatives_from: str = key("retriever top", choices=("retriever top", "positive-aware top", "probabilistic",
                                                               "mixed", "random"))
    # the first rank the positive-aware sources ("positive-aware top", "probabilistic") take negatives from: 10
    # leaves the retriever's top ranks, where CoSQA's unlabelled true answers sit, out of the ranker's negatives
    ranker_negatives_start: int = key(0, ge=0)
    ranker_warmup_ratio: float | None = key(None, ge=0, lt=1)  # the ranker's warmup; None: warmup_ratio
    # the ranker's learning rate; None: learning_rate. R2PS trains its ranker at 2e-5; one epoch-long run at 5e-5 on
    # CoSQA saturated its tanh on every candidate and it stopped learning (benchmarks/README.md)
    ranker_learning_rate: float | None = key(None, gt=0)
    # CoSQA's human-judged pairs (label 1: answers; label 0: a retrieved code judged not to, 10,584 rows) as a second
    # task of the ranker, binary cross-entropy on its logit, batches alternating with the listwise loss's; the
    # selection set's and dev's queries left out (hf_softnce.training.ranker.judged_pairs)
    ranker_judged_pairs: bool = False
    # optimisation
    batch_size: int = key(32, ge=1)
    learning_rate: float = key(2e-5, gt=0)
    weight_decay: float = key(0.01, ge=0)
    epochs: float = key(1.0, gt=0)
    max_steps: int = key(-1, ge=-1, ne=0)  # -1: run `epochs`
    warmup_ratio: float = key(0.1, ge=0, lt=1)  # fraction of the total steps (< 1: see run._warmup)
    max_seq_length: int = key(256, ge=1)
    seed: int = key(42, ge=0, lt=2**32)  # numpy seeds must fit in 32 bits
    bf16: bool = False
    fp16: bool = False
    use_cpu: bool | None = None  # None: CPU when no accelerator is present
    ddp_backend: str | None = None  # None: gloo on CPU, nccl on GPU
    # checkpoints, logging, evaluation
    output_dir: str = "runs/soft_infonce"
    eval_steps: int | None = key(None, ge=1)  # None: evaluate once per epoch
    save_steps: int | None = key(None, ge=1)
    save_total_limit: int | None = key(2, ge=1)
    logging_steps: int = key(10, ge=1)
    resume_from_checkpoint: str | None = None  # a checkpoint folder, or "last"
    # Hub
    push_to_hub: str | None = None
    hub_private: bool = False
    hub_revision: str | None = None
    hub_create_pr: bool = False
    # SentenceTransformerTrainingArguments fields that are not hf_softnce keys (checked by from_dict / __post_init__)
    training_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Runs for from_dict, the constructor and dataclasses.replace alike, so no path skips the checks.
        if isinstance(self.push_to_hub, bool):
            # transformers' spelling: push_to_hub=true with the repo in hub_model_id.
            repo = (self.training_args or {}).get("hub_model_id") if isinstance(self.training_args, dict) else None
            if self.push_to_hub and not repo:
                raise _error("push_to_hub", "is true but no hub_model_id is set: give the repo (push_to_hub=me/model).")
            self.push_to_hub = repo if self.push_to_hub else None
        for spec in dataclasses.fields(self):
            if spec.name == "training_args":
                continue
            value = _check_value(spec.name, getattr(self, spec.name), spec.type, spec.metadata.get("checks", {}))
            object.__setattr__(self, spec.name, value)
        if self.ranker_negatives_start and self.ranker_negatives_from not in ("positive-aware top", "probabilistic"):
            raise _error("ranker_negatives_start", f"applies to ranker_negatives_from 'positive-aware top' or "
                         f"'probabilistic', not {self.ranker_negatives_from!r}: set ranker_negatives_start=0 with it.")
        if not isinstance(self.training_args, dict):
            raise ConfigError(f"config key 'training_args' must be a mapping, got {self.training_args!r}.")
        self.training_args = check_training_args(dict(self.training_args))

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.name != "training_args"]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str | None = None, lines: dict[str, int] | None = None
                  ) -> "TrainConfig":
        """Build a config from flat ``{key: value}``: hf_softnce keys, then training-argument fields.

        ``source`` (a file name, "command line") and ``lines`` (key -> line number) only make the errors precise.
        """
        values = dict(values)
        own, extra = {}, dict(values.pop("training_args", None) or {})
        for name, value in values.items():
            if name in _own_keys():
                own[name] = value
            elif name in training_argument_names():
                extra[name] = value
            else:
                raise ConfigError(_where(source, lines, name) + _unknown_key_message(name))
        try:
            return cls(**own, training_args=extra)
        except ConfigError as error:
            if source is None:
                raise
            raise ConfigError(_where(source, lines, _key_of(error)) + str(error)) from None

    def to_dict(self) -> dict[str, Any]:
        """Flat ``{key: value}`` (training-argument fields beside hf_softnce's keys): ``from_dict`` reads it back."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "training_args"}
        return {**_plain(values), **_plain(self.training_args)}


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, enum.Enum) else list(v) if isinstance(v, (list, tuple)) else v)
            for k, v in values.items()}


# How a run was driven, not what trained the model: where it logged and published, on which device. A card lists
# the settings that shaped the weights; these stay in the run folder's config.json. Keys of sentence-transformers'
# training arguments passed through by name count too, by prefix (hub_model_id, logging_dir, ...).
RUN_OPTION_KEYS = ("push_to_hub", "hub_", "logging_", "report_to", "run_name", "save_total_limit", "evaluate_base",
                   "use_cpu", "ddp_", "resume_from_checkpoint", "output_dir", "dataloader_")
# Checkpoints and the evaluations that judge them: they shaped the weights only where the best checkpoint was kept
# (select_on not "none"); without that choice the last step's weights are published.
CHECKPOINT_KEYS = ("save_", "eval_", "max_eval_queries", "select_on", "metric_for_best_model", "load_best_model_at_end",
                   "greater_is_better")
@lru_cache(maxsize=None)
def _own_keys() -> frozenset[str]:
    return frozenset(TrainConfig.keys())


@lru_cache(maxsize=None)
def training_argument_fields() -> dict[str, Any]:
    """``{field: type}`` of SentenceTransformerTrainingArguments minus hf_softnce's own keys (imported on first use)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    hints = typing.get_type_hints(SentenceTransformerTrainingArguments)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(SentenceTransformerTrainingArguments)
            if f.init and f.name not in _own_keys()}


@lru_cache(maxsize=None)
def training_argument_names() -> frozenset[str]:
    """The names of :func:`training_argument_fields`, without importing sentence-transformers when the installed
    versions are the ones :mod:`hf_softnce.training.argument_names` was written from (the check of a key's name
    then takes milliseconds, not the seconds of importing torch and transformers)."""
    from importlib import metadata

    from hf_softnce.training import argument_names

    try:
        installed = {name: metadata.version(name) for name in argument_names.VERSIONS}
    except metadata.PackageNotFoundError:
        installed = None
    if installed == argument_names.VERSIONS:
        return argument_names.FIELDS - _own_keys()
    return frozenset(training_argument_fields())


def is_config_key(name: str) -> bool:
    return name in _own_keys() or name in training_argument_names()


def _where(source: str | None, lines: dict[str, int] | None, name: str | None) -> str:
    if source is None:
        return ""
    line = (lines or {}).get(name) if name else None
    return f"{source}:{line}: " if line else f"{source}: "


def _unknown_key_message(name: str) -> str:
    candidates = sorted(_own_keys()) + sorted(training_argument_names())
    close = difflib.get_close_matches(name, candidates, n=1)
    if close:  # a typo: the one key meant, not a list of some 90 a reader has to search
        return f"Unknown config key {name!r}. Did you mean {close[0]!r}?"
    return (f"Unknown config key {name!r}. Valid keys: hf_softnce's ({', '.join(TrainConfig.keys())}) "
            "and any SentenceTransformerTrainingArguments field.")


def _error(name: str, message: str) -> ConfigError:
    error = ConfigError(f"config key {name!r} {message}")
    error.key = name
    return error


_NONE_STRINGS = ("none", "null", "~")


def _check_value(name: str, value: Any, annotation: str, checks: dict[str, Any]) -> Any:
    """``value`` as ``annotation`` ("int", "float | None", "list[str]", ...) says, within ``checks``; else raise."""
    kinds = [part.strip() for part in annotation.split("|")]
    if value is None or (isinstance(value, str) and value.lower() in _NONE_STRINGS and "None" in kinds):
        if "None" in kinds:
            return None
        raise _error(name, f"must be {_describe(kinds)}, got {value!r}.")
    value = _convert(name, value, kinds)
    if "choices" in checks and value not in checks["choices"]:
        raise _error(name, f"must be one of {list(checks['choices'])}, got {value!r}.")
    for op, bound, ok in (("ge", ">=", lambda v, b: v >= b), ("gt", ">", lambda v, b: v > b),
                          ("le", "<=", lambda v, b: v <= b), ("lt", "<", lambda v, b: v < b),
                          ("ne", "!=", lambda v, b: v != b)):
        if op in checks and not ok(value, checks[op]):
            raise _error(name, f"must be {bound} {checks[op]}, got {value!r}.")
    return value


def _describe(kinds: list[str]) -> str:
    words = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string",
             "list[str]": "a list of strings", "None": "null"}
    return " or ".join(words.get(k, k) for k in kinds)


def _convert(name: str, value: Any, kinds: list[str]) -> Any:
    for kind in (k for k in kinds if k != "None"):
        converted = _as_kind(value, kind)
        if converted is not _NO:
            return converted
    raise _error(name, f"must be {_describe(kinds)}, got {value!r}.")


_NO = object()


def _as_kind(value: Any, kind: str) -> Any:
    # bool is an int subclass in Python; `batch_size: true` must not become 1.
    if kind == "bool":
        return value if isinstance(value, bool) else _NO
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return _NO
        return _NO
    if kind == "float":
        # YAML 1.1 reads ``1e-5`` (no dot) as a string: a number-typed key still gets its number.
        if isinstance(value, bool):
            return _NO
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return _NO
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        return _NO
    if kind == "str":
        return value if isinstance(value, str) else _NO
    if kind == "list[str]":
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        return _NO
    return value


def _check_hint(value: Any, hint: Any) -> Any:
    """``value`` checked against a training-argument type hint; ``_NO`` when it does not fit."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        # Try the strict kinds first so that "3" is not taken as a str where an int is also allowed.
        for member in sorted(members, key=lambda m: m is str):
            checked = _check_hint(value, member)
            if checked is not _NO:
                return checked
        # "None" spelled as text is null only where a string is not itself allowed (report_to=none stays "none").
        if type(None) in members and isinstance(value, str) and value.lower() in _NONE_STRINGS:
            return None
        return _NO
    if hint is type(None):
        return None if value is None else _NO
    if hint in (bool, int, float, str):
        return _as_kind(value, hint.__name__)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = {member.value for member in hint}
        return value if value in values or isinstance(value, hint) else _NO
    if origin in (list, tuple):
        return list(value) if isinstance(value, (list, tuple)) else _NO
    if origin is dict or hint is dict:
        return value if isinstance(value, dict) else _NO
    if isinstance(hint, type):
        return value if isinstance(value, hint) else _NO
    return value  # callables and other hints: left to SentenceTransformerTrainingArguments


def _hint_name(hint: Any) -> str:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return f"one of {[m.value for m in hint]}"
    return getattr(hint, "__name__", None) if isinstance(hint, type) else str(hint).replace("typing.", "")


# Counts SentenceTransformerTrainingArguments itself leaves unchecked (a 0 only fails mid-training).
_TRAINING_ARG_MINIMA = {"gradient_accumulation_steps": 1, "per_device_train_batch_size": 1,
                        "per_device_eval_batch_size": 1, "num_train_epochs": 0}


def check_training_args(values: dict[str, Any]) -> dict[str, Any]:
    """Type-check SentenceTransformerTrainingArguments fields, then let the class itself validate them."""
    if not values:
        return values
    fields = training_argument_fields()
    checked = {}
    for name, value in values.items():
        if name not in fields:
            raise _error(name, "is neither an hf_softnce key nor a SentenceTransformerTrainingArguments field.")
        result = _check_hint(value, fields[name])
        if result is _NO:
            raise _error(name, f"must be {_hint_name(fields[name])}, got {value!r}.")
        if name in _TRAINING_ARG_MINIMA and result < _TRAINING_ARG_MINIMA[name]:
            raise _error(name, f"must be >= {_TRAINING_ARG_MINIMA[name]}, got {value!r}.")
        checked[name] = result
    try:
        build_check_arguments(checked)
    except Exception as error:  # noqa: BLE001 - the class raises ValueError, TypeError, ImportError, ...
        # Name the culprit: the first key that fails on its own, else all of them.
        for name, value in checked.items():
            try:
                build_check_arguments({name: value})
            except Exception as single:  # noqa: BLE001
                raise _error(name, f"is invalid: {_one_line(single)}") from None
        raise _error(", ".join(checked), f"are invalid together: {_one_line(error)}") from None
    return checked


def build_check_arguments(values: dict[str, Any]):
    from sentence_transformers import SentenceTransformerTrainingArguments

    # report_to=[] / use_cpu: checking must not start TensorBoard or ask for an accelerator.
    base = {"output_dir": "unused", "report_to": [], "use_cpu": True}
    return SentenceTransformerTrainingArguments(**{**base, **values})


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (so ``lr=1e-5``, ``bf16=true``, ``sources=[stdlib]`` work)."""
    if "=" not in item:
        raise ConfigError(f"command line: override {item!r} must look like key=value.")
    name, raw = item.split("=", 1)
    name = name.strip().lstrip("-").replace("-", "_")
    try:
        return name, yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"command line: config key {name!r}: invalid YAML value {raw!r} ({problem}).") from None


def read_yaml_config(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """``({key: value}, {key: line})`` of a YAML config file; parse errors name file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config ({error.strerror or error}).") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {error.object[error.start]:#04x}); save the config "
                          "as UTF-8.") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        values = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(filter(None, (error.context, error.problem)))
        raise ConfigError(f"{where}: invalid YAML: {problem}.") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {_one_line(error)}.") from None
    if values is None:
        return {}, {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values, got {type(values).__name__}.")
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        name = key_node.value
        if key_node.tag != "tag:yaml.org,2002:str":  # 1:, null:, true: are keys YAML reads as other types
            raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: config key {name!r} is not a name (YAML reads "
                              f"it as {key_node.tag.rsplit(':', 1)[-1]}).")
        if name in lines:  # PyYAML keeps the last value silently; a repeated key is almost always a mistake
            raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: config key {name!r} is repeated "
                              f"(first on line {lines[name]}).")
        lines[name] = key_node.start_mark.line + 1
    return values, lines


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] = ()) -> TrainConfig:
    """Read a YAML config (optional) and apply ``key=value`` overrides; unknown keys and bad values raise."""
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if path is not None:
        values, lines = read_yaml_config(path)
    items = dict(overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides))
    # Errors in an overridden key point at the command line, the others at the file.
    file_values = {k: v for k, v in values.items() if k not in items}
    source = str(path) if path is not None else None
    for name in file_values:
        if not is_config_key(name):
            raise ConfigError(_where(source, lines, name) + _unknown_key_message(name))
    for name in items:
        if not is_config_key(name):
            raise ConfigError("command line: " + _unknown_key_message(name))
    try:
        return TrainConfig.from_dict({**file_values, **items})
    except ConfigError as error:
        name = _key_of(error)
        if name in items or path is None:
            raise ConfigError(f"command line: {error}") from None
        raise ConfigError(_where(source, lines, name) + str(error)) from None


def _key_of(error: ConfigError) -> str | None:
    text = str(error)
    return text.split("'")[1] if text.startswith("config key '") else None
