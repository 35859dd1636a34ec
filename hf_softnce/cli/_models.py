"""Resolve a model argument local-first, before any work: a folder, or a Hub id that can actually be loaded.

Loading a name that is neither a folder nor reachable made transformers retry the Hub for about 80 s and end in a
69-line traceback. Here a folder is used as is; a Hub id is accepted when its files are in the local Hub cache, or
when the Hub is reachable and has it; everything else is one ``CLIError`` naming the argument.
"""

from __future__ import annotations

import os

from hf_softnce.cli._errors import CLIError

# What the packaged all-MiniLM-L6-v2 is called on the command line (as in the training configs).
DEFAULT_MODEL = "default"
# Files a SentenceTransformer / CrossEncoder / transformers model folder holds at least one of.
MODEL_FILES = ("modules.json", "config.json", "config_sentence_transformers.json")
# One quick question to the Hub instead of the loaders' retries.
HUB_TIMEOUT_S = 10


def resolve_model(value: str | None, flag: str) -> str:
    """The folder or Hub id to load for ``flag`` (``None`` or ``"default"``: the packaged all-MiniLM-L6-v2)."""
    if value is None or value == DEFAULT_MODEL:
        from hf_softnce.defaults import default_model_path

        try:
            return default_model_path()
        except ImportError as error:
            raise CLIError(f"{flag}: {error}") from None
    if os.path.exists(value):
        return _check_folder(value, flag)
    if not _is_hub_id(value):
        raise CLIError(f"{flag} {value!r}: no such folder, and not a Hugging Face Hub model id.")
    if _in_hub_cache(value):
        return value
    if _offline():
        raise CLIError(
            f"{flag} {value!r}: no such folder, and no cached copy of that Hub model while HF_HUB_OFFLINE is set; "
            "give a model folder, or 'default' for the packaged all-MiniLM-L6-v2."
        )
    return _check_on_hub(value, flag)


def _check_folder(path: str, flag: str) -> str:
    if not os.path.isdir(path):
        raise CLIError(f"{flag} {path!r} is a file, not a model folder.")
    if not any(os.path.isfile(os.path.join(path, name)) for name in MODEL_FILES):
        raise CLIError(f"{flag} {path!r} is not a model folder (it holds none of {', '.join(MODEL_FILES)}).")
    from hf_softnce.model_checks import IncompleteModelFolder, check_model_folder

    try:
        check_model_folder(path)
    except IncompleteModelFolder as error:
        raise CLIError(f"{flag}: {error}") from None
    return path


def _is_hub_id(value: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    # A path-like spelling ("./x", "~/x", "a/b/c") is a missing folder, never a Hub id.
    if value.startswith((".", "~", os.sep)) or value.count("/") > 1:
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def _offline() -> bool:
    from huggingface_hub import constants

    # huggingface_hub reads the variable once, at import; a value set later in this process counts too.
    from_env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    return from_env or bool(constants.HF_HUB_OFFLINE)


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for name in MODEL_FILES:
        found = try_to_load_from_cache(repo_id, name)
        if isinstance(found, str):
            return True
    return False


def _check_on_hub(repo_id: str, flag: str) -> str:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        return repo_id  # it exists; the loader asks for the token it needs
    except RepositoryNotFoundError:
        raise CLIError(f"{flag} {repo_id!r}: no such folder, and no such model on the Hugging Face Hub.") from None
    except Exception as error:  # noqa: BLE001 - any network failure means the same to the user
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise CLIError(
            f"{flag} {repo_id!r}: no such folder, and the Hugging Face Hub could not be reached ({reason}); give a "
            "model folder, or set HF_HUB_OFFLINE=1 to use only locally cached models."
        ) from None
    return repo_id
