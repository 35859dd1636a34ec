"""Training configuration: YAML files in recipes/configs/, overridable from the command line.

An unknown key is an error that lists the valid keys: a typo must never silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class TrainConfig:
    # model and data
    model: str = "default"  # "default" = the packaged all-MiniLM-L6-v2; else a path or Hub id
    data: str = "python"  # python | codesearchnet:<language> | cosqa | advtest | path of a saved DatasetDict
    sources: list[str] = field(default_factory=lambda: ["stdlib"])  # for data=python
    data_dir: str | None = None  # local files for codesearchnet/cosqa/advtest
    max_train_pairs: int | None = None
    # Training data that looks like real search (hf_softnce.data.augment, hf_softnce.data.conala):
    docstring_rate: float = 0.0  # share of codes that keep their docstring, as code sits in a repository
    docstring_part: str = "rest"  # rest (all but the paragraph the query came from) | full
    query_style_rate: float = 0.0  # share of docstring queries rewritten the way people type a search
    conala_mix: float = 0.0  # share of the training pairs from CoNaLa (real StackOverflow questions); 1: CoNaLa alone
    conala_config: str = "curated"  # curated | mined (neulab/conala; curated falls back to a local copy)
    max_eval_queries: int | None = None
    cosqa_dir: str | None = "auto"  # real-query validation set; "auto" looks in ../shared/data/cosqa
    select_on: str = "auto"  # the set the best checkpoint is chosen on: valid | cosqa | auto (cosqa when present) | none
    cosqa_corpus_size: int | None = None  # search a fixed subset (all gold codes + random distractors); None: all 6,267
    # loss
    loss: str = "soft_infonce"  # infonce | soft_infonce | order_infonce
    weighter: str = "bm25"  # none | bm25 | embedding | trained_model | precomputed
    weighter_model: str | None = None  # the frozen encoder of the embedding / trained_model weighters
    alpha: float | None = None
    beta: float | None = None
    weight_temperature: float | None = None
    min_weight: float = 0.1
    variant: str = "soft_infonce"
    order_weight: float = 1.0
    order_scale: float = 20.0
    scale: float = 20.0
    mini_batch_size: int | None = None  # set to use the GradCache (Cached*) variant
    gather_across_devices: bool = False
    mask_duplicates: bool = True
    # Weight-space ensemble with the base model after training (WiSE-FT, Wortsman et al. 2022):
    # theta = (1 - w) * theta_base + w * theta_tuned. Keeps the base model's robustness on queries unlike the
    # training docstrings (real web queries) while keeping most of the in-domain gain. None: no ensembling.
    wise_ft_weight: float | None = None
    num_negatives: int = 0  # mined hard negatives per pair (0: in-batch negatives only)
    # mining (recipes/train_order_infonce.py, recipes/train_ranker.py): RankingHardNegativeMiner settings
    miner_model: str | None = None  # the frozen retriever that ranks the corpus; None: `model`
    mining_strategy: str = "window"  # window | top | probabilistic (R2PS: a fixed window of ranks)
    mining_window_start: int = 0  # first rank used; R2PS's floor(lambda*N) with lambda=0 on CodeSearchNet/CoSQA
    # order labels (recipes/train_order_infonce.py): label_order's teacher when the data has no `label` column
    order_teacher: str = "bm25"  # bm25 | default | a SentenceTransformer path/Hub id | cross-encoder:<path or id>
    order_refine: bool = True  # OASIS refinement of likely false negatives (above positive, GMM, near-duplicate)
    # ranker (recipes/train_ranker.py): the R2PS cross-encoder and the cascade it is evaluated in
    ranker_model: str = "default"  # base of the CrossEncoder (num_labels=1, new head); "default" = packaged MiniLM
    ranker_head: str = "stock"  # stock (the encoder's classification head) | released (R2PS: mean pool, dense-gelu-LN-linear)
    ranker_temperature: float = 20.0  # R2PSRankerLoss: tanh(logit) * temperature (R2PS uses 20-40)
    ranker_top_k: int = 10  # candidates of the retriever the ranker re-scores (R2PS: 10)
    ranker_combine: str = "replace"  # replace (R2PS on CodeSearchNet) | add (R2PS on CoSQA)
    # optimisation
    batch_size: int = 32
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_steps: int = -1
    warmup_ratio: float = 0.1
    max_seq_length: int = 256
    seed: int = 42
    bf16: bool = False
    fp16: bool = False
    use_cpu: bool | None = None  # None: CPU when no accelerator is present
    ddp_backend: str | None = None  # None: gloo on CPU, nccl on GPU
    # checkpoints, logging, evaluation
    output_dir: str = "runs/soft_infonce"
    eval_steps: int | None = None  # None: evaluate once per epoch
    save_steps: int | None = None
    save_total_limit: int = 2
    logging_steps: int = 10
    resume_from_checkpoint: str | None = None  # a checkpoint folder, or "last"
    # Hub
    push_to_hub: str | None = None
    hub_private: bool = False
    hub_revision: str | None = None
    hub_create_pr: bool = False

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise ValueError(f"Unknown config key(s) {unknown}. Valid keys: {', '.join(cls.keys())}.")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        return cls(**{key: _coerce(key, value, types[key]) for key, value in values.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(key: str, value: Any, annotation: str) -> Any:
    # YAML 1.1 reads ``1e-5`` (no dot) as a string; a number-typed key must still get a number, or fail here
    # rather than deep inside the optimizer.
    if not isinstance(value, str) or value.lower() in ("none", "null"):
        return None if isinstance(value, str) and "None" in annotation else value
    for name, kind in (("float", float), ("int", int)):
        if name in annotation.split(" | "):
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"Config key {key} must be {annotation}, got {value!r}.") from None
    return value


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (so ``lr=1e-5``, ``bf16=true``, ``sources=[stdlib]`` work)."""
    if "=" not in item:
        raise ValueError(f"Override {item!r} must look like key=value.")
    key, raw = item.split("=", 1)
    key = key.strip().lstrip("-").replace("-", "_")
    return key, yaml.safe_load(raw) if raw.strip() else None


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] = ()) -> TrainConfig:
    """Read a YAML config (optional) and apply ``key=value`` overrides; unknown keys raise."""
    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"Config {path} must be a mapping of keys to values.")
        values.update(loaded)
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    values.update(dict(items))
    return TrainConfig.from_dict(values)
