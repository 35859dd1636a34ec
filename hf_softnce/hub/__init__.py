"""Model cards and the Hugging Face Hub: the card every saved model carries, the checked folder, the upload.

A training run uses this package in three places::

    repo_id = preflight_push(args.push_to_hub, private=args.private)   # first thing: fail before training
    ...train, evaluate the saved weights...
    summary = RunSummary(...)                                           # what the run did and measured
    write_model_card(output_dir / "final", model, summary)             # offline, no token: README.md and friends
    push_run(output_dir, repo_id, private=args.private)                 # uploads final/, never checkpoints

One module per concern, as huggingface_hub keeps ``repocard`` apart from its upload code: :mod:`.summary` (what the
card reports), :mod:`.card` (rendering), :mod:`.folder` (the model folder and its checks), :mod:`.scan` (the token
scan), :mod:`.public` (what of a config may be published), :mod:`.upload` (preflight and push).
"""

from hf_softnce.hub.card import STOCK_CARD_PLACEHOLDERS, TASK_NAME, TASK_TYPE, card_data, eval_results, render_model_card
from hf_softnce.hub.folder import (
    CARD_FILE,
    EVAL_RESULTS_FILE,
    FINAL_FOLDER,
    PICKLE_SUFFIXES,
    TRAINING_CONFIG_FILE,
    RunFolderError,
    check_run_folder,
    save_run_folder,
    upload_folder_of,
    write_model_card,
)
from hf_softnce.hub.public import public_values
from hf_softnce.hub.scan import TOKEN_PATTERN, redact
from hf_softnce.hub.summary import (
    COSQA_DATASET_ID,
    DATASET_IDS,
    DataSummary,
    EvalSummary,
    RunSummary,
    dataset_id,
    describe_loss,
    metric_label,
)
from hf_softnce.hub.upload import LOGIN_HELP, HubAccessError, preflight_push, push_run

__all__ = [
    "CARD_FILE", "COSQA_DATASET_ID", "DATASET_IDS", "EVAL_RESULTS_FILE", "FINAL_FOLDER", "LOGIN_HELP", "PICKLE_SUFFIXES",
    "STOCK_CARD_PLACEHOLDERS", "TASK_NAME", "TASK_TYPE", "TOKEN_PATTERN", "TRAINING_CONFIG_FILE", "DataSummary",
    "EvalSummary", "HubAccessError", "RunFolderError", "RunSummary", "card_data", "check_run_folder", "dataset_id",
    "describe_loss", "eval_results", "metric_label", "preflight_push", "public_values", "push_run", "redact",
    "render_model_card", "save_run_folder", "upload_folder_of", "write_model_card",
]
