"""Access and upload: check before training that a run can be pushed, then push the checked model folder."""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from hf_softnce.hub.folder import PICKLE_SUFFIXES, check_run_folder, upload_folder_of
from hf_softnce.hub.scan import redact

logger = logging.getLogger(__name__)

LOGIN_HELP = (
    "Log in with `hf auth login`, or set the HF_TOKEN environment variable "
    "to a token with write access from https://huggingface.co/settings/tokens."
)


class HubAccessError(RuntimeError):
    """No usable token, or the token cannot write to the target repository."""


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
    """Upload a model folder (checked again, token scan included) to ``repo_id``.

    ``run_dir`` is a folder written by :func:`save_run_folder`, a saved model with hf_softnce's card (a run's
    ``final/``), or a recipe's output folder, of which only ``final/`` is uploaded: never its checkpoints,
    optimizer states or logs (:func:`upload_folder_of`).

    Creates the repository if needed (``private`` applies only then) and the branch ``revision`` if given;
    with ``create_pr`` the upload is a pull request against ``revision`` (default: main). Pickle weights left
    in the repository by an earlier upload are deleted in the same commit, so it loads from safetensors only.
    Returns huggingface_hub's ``CommitInfo``. Call :func:`preflight_push` before training, not just before this.
    """
    token = _resolve_token(token)
    run_dir = upload_folder_of(run_dir)
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
