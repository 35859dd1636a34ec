"""The model folder that is uploaded: written with its card, checked before any upload.

Every saved model gets the same files beside its weights: ``README.md`` (hf_softnce's card),
``eval_results.json`` and ``training_config.yaml`` (:func:`write_model_card`). A recipe's output folder holds more
(checkpoints with pickled optimizer states, logs): only its ``final/`` is ever uploaded (:func:`upload_folder_of`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import yaml
from huggingface_hub import ModelCard, get_token

from hf_softnce.hub.card import STOCK_CARD_PLACEHOLDERS, TASK_NAME, TASK_TYPE, render_model_card
from hf_softnce.hub.public import plain, public_values
from hf_softnce.hub.scan import holds_token, redact, text_holds_token
from hf_softnce.hub.summary import RunSummary
from hf_softnce.output_paths import readable_as_umask_allows

CARD_FILE = "README.md"
EVAL_RESULTS_FILE = "eval_results.json"
TRAINING_CONFIG_FILE = "training_config.yaml"
# The model inside a recipe's output folder (the rest is checkpoints, logs and metrics): a retriever's final/,
# the ranker recipe's ranker/.
FINAL_FOLDER = "final"
MODEL_FOLDERS = (FINAL_FOLDER, "ranker")
# Weight files that unpickle on load. A pushed model must carry safetensors only.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class RunFolderError(ValueError):
    """The folder must not be uploaded as it is (missing card, pickle weights, remote code, a token...)."""


def write_model_card(folder: str | Path, model, summary: RunSummary) -> Path:
    """Write hf_softnce's card (``README.md``), ``eval_results.json`` and ``training_config.yaml`` into a saved
    model's folder, replacing sentence-transformers' stock card. Needs no token and no network."""
    folder = Path(folder)
    (folder / CARD_FILE).write_text(render_model_card(summary, model), encoding="utf-8")
    evaluations = [
        {"name": e.name, "dataset_id": e.dataset_id, "split": e.split, "queries": e.queries,
         "corpus_size": e.corpus_size, "results": e.results}
        for e in summary.evaluations
    ]
    eval_payload = {
        "model_name": summary.model_name,
        "method": summary.method,
        "baseline": summary.baseline,
        "base_row": summary.base_row,
        "task": {"type": TASK_TYPE, "name": TASK_NAME},
        "seeds": list(summary.seeds),
        "evaluations": plain(evaluations),
    }
    (folder / EVAL_RESULTS_FILE).write_text(json.dumps(eval_payload, indent=2) + "\n", encoding="utf-8")
    training_config = public_values(plain({
        "base_model": summary.base_model,
        "method": summary.method,
        "loss": {"name": summary.loss_name, "config": summary.loss_config},
        "data": summary.data,
        "seeds": summary.seeds,
        "wise_ft_weight": summary.wise_ft_weight,
        "training_args": summary.training_args,
    }))
    (folder / TRAINING_CONFIG_FILE).write_text(yaml.safe_dump(training_config, sort_keys=False), encoding="utf-8")
    return folder


def save_run_folder(model, summary: RunSummary, out_dir: str | Path) -> Path:
    """Save ``model`` with its card into a new folder, the exact folder :func:`push_run` uploads, and check it.

    ``out_dir`` must be new or empty, so no stale file from another run is uploaded with this one.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; save the run into a new folder so nothing stale gets uploaded.")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir), create_model_card=False, safe_serialization=True)
    readable_as_umask_allows(out_dir)
    write_model_card(out_dir, model, summary)
    stored_token = get_token()
    check_run_folder(out_dir, secrets=[stored_token] if stored_token else ())
    return out_dir


def upload_folder_of(run_dir: str | Path) -> Path:
    """The folder to upload for ``run_dir``: itself when it is a saved model, its ``final/`` (or ``ranker/``) when it
    is a recipe's output folder (the model plus checkpoints, logs and metrics, none of which belong in the model
    repository)."""
    run_dir = Path(run_dir)
    if (run_dir / "modules.json").exists():
        return run_dir
    return next((run_dir / name for name in MODEL_FOLDERS if (run_dir / name / "modules.json").exists()), run_dir)


def check_run_folder(run_dir: str | Path, secrets: Iterable[str] = ()) -> list[str]:
    """Refuse a folder that would not load with plain ``SentenceTransformer(repo_id)`` or that leaks a token.

    Checks: hf_softnce's README.md (not sentence-transformers' stock card) with a parseable model-index,
    modules.json, safetensors weights and no pickle weights, no remote code (every module a sentence-transformers
    class, no ``auto_map``, no ``.py`` files), and no token: neither the given ``secrets`` nor anything shaped like a
    Hugging Face token, in any file name or file (:mod:`hf_softnce.hub.scan`). A recipe's output folder is checked
    as what is uploaded of it, its ``final/``. Returns the relative paths of the files, sorted; raises
    :class:`RunFolderError` listing every problem.
    """
    run_dir = upload_folder_of(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is not a folder.")
    files = sorted(p for p in run_dir.rglob("*") if p.is_file() and ".git" not in p.relative_to(run_dir).parts)
    names = [p.relative_to(run_dir).as_posix() for p in files]
    problems = []

    if CARD_FILE not in names:
        problems.append(f"no {CARD_FILE} (the model card)")
    else:
        card = ModelCard.load(run_dir / CARD_FILE)
        stock = [text for text in STOCK_CARD_PLACEHOLDERS if text in card.content]
        if stock:
            problems.append(f"{CARD_FILE} holds sentence-transformers' placeholder {stock[0]!r}: write hf_softnce's card "
                            "(hf_softnce.hub.write_model_card)")
        if not card.data.eval_results:
            problems.append(f"{CARD_FILE} has no model-index evaluation results")
    if "modules.json" not in names:
        problems.append("no modules.json: not a saved SentenceTransformer")
    else:
        modules = _json_file(run_dir / "modules.json", problems)
        if modules is not None and not (isinstance(modules, list) and all(isinstance(m, dict) for m in modules)):
            problems.append("modules.json is not a list of modules (objects with a 'type')")
            modules = None
        for module in modules or []:
            if not str(module.get("type") or "").startswith("sentence_transformers."):
                problems.append(f"module {module.get('type')!r} is not a sentence-transformers class (needs remote "
                                "code)")
    if not any(name.endswith(".safetensors") for name in names):
        problems.append("no .safetensors weights")
    problems += [f"pickle file {name} (save with safetensors only)" for name in names if name.endswith(PICKLE_SUFFIXES)]
    problems += [f"Python file {name} (would need trust_remote_code)" for name in names if name.endswith(".py")]
    for name in names:
        config = _json_file(run_dir / name, problems, name) if name.endswith("config.json") else None
        if isinstance(config, dict) and "auto_map" in config:
            problems.append(f"{name} has an auto_map (would need trust_remote_code)")

    secrets = [secret for secret in secrets if secret]
    for name, path in zip(names, files):
        if text_holds_token(name, secrets):
            # The name itself is the leak: print it redacted.
            shown = name
            for secret in secrets:
                shown = shown.replace(secret, "<token>")
            problems.append(f"the file name {redact(shown, None)!r} contains a Hugging Face token")
            continue
        found = holds_token(path, secrets)
        if found:
            problems.append(f"{name} {found}")
    if problems:
        raise RunFolderError(f"Refusing to upload {run_dir}:\n- " + "\n- ".join(problems))
    return names


def _json_file(path: Path, problems: list[str], name: str | None = None):
    """``path``'s JSON, or None with the problem added (a folder check lists every problem, it does not stop)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        problems.append(f"{name or path.name} is not readable JSON ({str(error).splitlines()[0][:120]})")
        return None
