"""``hf-softnce push RUN_DIR REPO_ID``: upload a saved run folder to the Hugging Face Hub."""

from __future__ import annotations

import argparse

from hf_softnce.cli._parser import add_command


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``push`` to the console script's subparsers; the parsed args carry ``func`` (returns an exit code)."""
    parser = add_command(
        subparsers,
        "push",
        help="Upload a trained model (its final/ folder with the card, evaluation results, training config) to the Hub.",
        description="Upload a recipe's or `hf-softnce train`'s output folder (only its final/ is uploaded: never "
        "checkpoints, optimizer states or logs), a saved model with hf_softnce's card, or a folder written by "
        "hf_softnce.hub.save_run_folder. The token comes from HF_TOKEN or "
        "`hf auth login`; access is checked before anything is uploaded, and a folder holding a token is refused.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run's output folder, or the saved model folder itself")
    parser.add_argument("repo_id", metavar="REPO_ID", help="namespace/name (a bare name means your user namespace)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to push to, created if missing (default: main)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument(
        "--token",
        default=None,
        help="Hub token; prefer HF_TOKEN or `hf auth login`, which keep it out of shell history (default: theirs)",
    )
    parser.set_defaults(func=push_command)
    return parser


def push_command(args: argparse.Namespace) -> int:
    from hf_softnce.hub import check_run_folder, preflight_push, push_run

    # Local checks first (they need no network), then access, then the upload. HubAccessError and
    # RunFolderError are user errors: hf_softnce.cli.app prints them as one line (exit status 2).
    check_run_folder(args.run_dir)
    repo_id = preflight_push(args.repo_id, token=args.token, private=args.private)
    commit = push_run(
        args.run_dir,
        repo_id,
        token=args.token,
        private=args.private,
        revision=args.revision,
        create_pr=args.create_pr,
    )
    print(getattr(commit, "pr_url", None) or getattr(commit, "commit_url", None) or repo_id)
    return 0
