"""Model card, upload folder, push preflight and upload — all offline (HF_HUB_OFFLINE=1, the Hub faked at HfApi)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import HfApi, ModelCard, constants, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from hf_softnce import hub
from hf_softnce.hub import card as hub_card
from hf_softnce.hub import (
    DataSummary,
    EvalSummary,
    HubAccessError,
    RunFolderError,
    RunSummary,
    check_run_folder,
    describe_loss,
    preflight_push,
    push_run,
    render_model_card,
    COSQA_DATASET_ID,
    save_run_folder,
)
from hf_softnce.cli.push import register

FAKE_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"  # token-shaped, never valid
TEXTS = ["sort a list of dictionaries by key", "def add(a, b):\n    return a + b", "read a json file"]
SOFT_CITATION = "@inproceedings{li2023rethinking, title={Rethinking Negative Pairs in Code Search}, year={2023}}"


class SoftInfoNCELoss:
    """Stands in for hf_softnce's loss: the contract the summary reads is get_config_dict() and citation."""

    def get_config_dict(self):
        weighter = {"name": "BM25Weighter", "k1": 1.2, "b": 0.75}
        return {"scale": 20.0, "weighter": weighter, "alpha": 1.5, "beta": 0.5, "weight_temperature": 1.0}

    citation = SOFT_CITATION


def make_summary(**overrides) -> RunSummary:
    fields = dict(
        model_name="tiny-soft-infonce",
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        method="SoftInfoNCE (BM25)",
        **describe_loss(SoftInfoNCELoss()),
        data=DataSummary(
            sources=["functions and docstrings of 12 PyPI packages"],
            splits={"train": 1200},
            counts={"duplicate groups": 17},
            datasets=["org/python-code-pairs"],
        ),
        evaluations=[EvalSummary(
            name="Python code pairs",
            results={
                "zero-shot": {"mrr@1000": 0.301, "recall@1": 0.2},
                "InfoNCE": {"mrr@1000": [0.50, 0.52, 0.51], "recall@1": [0.40, 0.42, 0.41]},
                "SoftInfoNCE (BM25)": {"mrr@1000": [0.55, 0.57, 0.56], "recall@1": [0.45, 0.44, 0.46]},
            },
            queries=300,
            corpus_size=1234,
            dataset_id="org/python-code-search-eval",
            split="test",
        )],
        baseline="InfoNCE",
        base_row="zero-shot",
        seeds=[1, 2, 3],
        training_args={"learning_rate": 2e-5, "per_device_train_batch_size": 32, "hub_token": FAKE_TOKEN,
                       "output_dir": "/home/someone/runs/soft"},
        repo_id="someone/tiny-soft-infonce",
        license="apache-2.0",
    )
    fields.update(overrides)
    return RunSummary(**fields)


@pytest.fixture
def no_stored_token(tmp_path, monkeypatch):
    """No HF_TOKEN and an empty HF_HOME: get_token() finds nothing, as on a machine never logged in."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    # huggingface_hub resolves the token file from HF_HOME at import time.
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))


@pytest.fixture
def run_folder(tiny_model, tmp_path, no_stored_token):
    return tiny_model, save_run_folder(tiny_model, make_summary(), tmp_path / "run")


def test_saved_weights_are_readable_as_the_umask_allows(run_folder):
    # safetensors writes its file 0o600; every other file of the folder follows the umask, so must the weights.
    _, folder = run_folder
    mask = os.umask(0)
    os.umask(mask)
    weights = list(folder.rglob("*.safetensors"))
    assert weights and all(stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask for path in weights)


class FakeHub:
    """Records the HfApi calls push_run makes, with the folder's files as they are at upload time."""

    def __init__(self, monkeypatch, whoami=None, existing=(), writable=(), public=()):
        self.calls = []
        self.me = whoami or {"name": "someone", "orgs": [{"name": "team", "roleInOrg": "write"}]}
        hub_self = self

        def record(name):
            def call(api, *args, **kwargs):
                hub_self.calls.append((name, args, kwargs))
                return hub_self.reply(name, args, kwargs)

            return call

        for name in ("whoami", "repo_exists", "auth_check", "repo_info", "create_repo", "create_branch", "upload_folder"):
            monkeypatch.setattr(HfApi, name, record(name))
        self.existing, self.writable, self.public = set(existing), set(writable), set(public)

    def reply(self, name, args, kwargs):
        from huggingface_hub import CommitInfo, RepoUrl

        if name == "whoami":
            return self.me
        if name == "repo_exists":
            return args[0] in self.existing
        if name == "auth_check":
            if args[0] not in self.writable:
                import httpx2
                from huggingface_hub.utils import hf_raise_for_status

                # What the Hub answers, echoing the credentials, so the test also checks they are redacted.
                request = httpx2.Request("GET", f"https://huggingface.co/api/models/{args[0]}/auth-check/write")
                hf_raise_for_status(httpx2.Response(403, json={"error": f"no write access for {FAKE_TOKEN}"}, request=request))
            return None
        if name == "repo_info":
            return argparse.Namespace(private=args[0] not in self.public)
        if name == "create_repo":
            return RepoUrl(f"https://huggingface.co/{args[0]}")
        if name == "upload_folder":
            folder = Path(kwargs["folder_path"])
            kwargs["files_at_upload"] = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            url = f"https://huggingface.co/{kwargs['repo_id']}"
            return CommitInfo(
                commit_url=f"{url}/commit/abc",
                commit_message=kwargs["commit_message"],
                commit_description="",
                oid="abc",
                pr_url=f"{url}/discussions/1" if kwargs.get("create_pr") else None,
            )
        return None

    def named(self, name):
        return [kwargs | {"args": args} for call, args, kwargs in self.calls if call == name]


# ------------------------------------------------------------------------------------------ the upload folder


def test_saved_folder_reloads_with_identical_embeddings_from_safetensors(run_folder):
    from sentence_transformers import SentenceTransformer

    model, folder = run_folder
    files = check_run_folder(folder)
    assert "model.safetensors" in files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert {"README.md", "eval_results.json", "training_config.yaml", "modules.json"} <= set(files)
    modules = json.loads((folder / "modules.json").read_text())
    assert all(module["type"].startswith("sentence_transformers.") for module in modules)

    reloaded = SentenceTransformer(str(folder), device="cpu")  # no trust_remote_code
    np.testing.assert_allclose(reloaded.encode(TEXTS), model.encode(TEXTS), rtol=0, atol=1e-6)


def test_card_model_index_round_trips_through_huggingface_hub(run_folder):
    _, folder = run_folder
    summary = make_summary()
    card = ModelCard.load(folder / "README.md")
    assert card.data.model_name == "tiny-soft-infonce"
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.library_name == "sentence-transformers"
    assert "loss:SoftInfoNCELoss" in card.data.tags
    assert card.data.datasets == ["org/python-code-pairs"]  # the training data; the evaluation set is in the index

    name, results = model_index_to_eval_results(metadata_load(folder / "README.md")["model-index"])
    assert name == "tiny-soft-infonce"
    by_metric = {r.metric_type: r for r in results}
    assert set(by_metric) == {"mrr@1000", "recall@1"}
    # The published weights are the first seed's: their numbers, not the mean over seeds.
    assert by_metric["mrr@1000"].metric_value == pytest.approx(0.55)
    assert by_metric["recall@1"].metric_value == pytest.approx(0.45)
    assert by_metric["mrr@1000"].metric_name == "MRR@1000 over 1,234 codes"
    for result in results:
        assert (result.task_type, result.dataset_type, result.dataset_split) == (
            "retrieval",
            summary.evaluations[0].dataset_id,
            "test",
        )
        assert result.dataset_name == "Python code pairs (300 queries over 1,234 codes)"
        assert result.dataset_args == {"queries": 300, "corpus_size": 1234}


def test_card_text_shows_baseline_side_by_side_usage_loss_and_citations(run_folder):
    _, folder = run_folder
    text = ModelCard.load(folder / "README.md").text
    # Side-by-side row: metric | InfoNCE | this model | delta.
    assert "| MRR@1000 | 0.5100 ± 0.0100 | 0.5600 ± 0.0100 | +0.0500 |" in text
    assert "| zero-shot | 0.3010 | 0.2000 |" in text
    assert 'SentenceTransformer("someone/tiny-soft-infonce")' in text and "model.encode_document(code)" in text
    assert "| alpha | `1.5` |" in text and "| weighter.k1 | `1.2` |" in text
    assert "negatives weighted by `BM25Weighter`" in text
    assert SOFT_CITATION in text and "Sentence-BERT" in text
    assert "| train | 1,200 |" in text
    assert "300 queries over 1,234 codes" in text
    assert "## Limitations" in text
    assert FAKE_TOKEN not in text  # the training args' hub_token is redacted
    assert "/home/someone" not in text and "output_dir" not in text  # no local path is published


def test_the_card_cites_cosqa_where_it_is_used_and_wise_ft_where_the_weights_are_averaged():
    from hf_softnce.hub.card import COSQA_CITATION, WISE_FT_CITATION, SENTENCE_BERT_CITATION, card_citations

    plain = make_summary()  # other data, no averaging: the loss's paper and Sentence-BERT only
    assert card_citations(plain) == [SOFT_CITATION.strip(), SENTENCE_BERT_CITATION]
    on_cosqa = replace(plain, wise_ft_weight=0.75,
                       evaluations=[replace(plain.evaluations[0], dataset_id=COSQA_DATASET_ID, split="valid")])
    assert card_citations(on_cosqa) == [SOFT_CITATION.strip(), COSQA_CITATION, WISE_FT_CITATION, SENTENCE_BERT_CITATION]
    trained_on_cosqa = replace(plain, data=replace(plain.data, datasets=[COSQA_DATASET_ID]))
    cited = card_citations(trained_on_cosqa)
    assert COSQA_CITATION in cited and WISE_FT_CITATION not in cited
    text = render_model_card(on_cosqa)
    assert "huang-etal-2021-cosqa" in text and "wortsman2022robust" in text


def test_eval_results_and_training_config_files(run_folder):
    _, folder = run_folder
    results = json.loads((folder / "eval_results.json").read_text())
    (evaluation,) = results["evaluations"]
    assert evaluation["results"]["InfoNCE"]["mrr@1000"] == [0.50, 0.52, 0.51]  # every seed kept, not just the mean
    assert (evaluation["queries"], evaluation["corpus_size"]) == (300, 1234)
    assert (results["method"], results["baseline"], results["seeds"]) == ("SoftInfoNCE (BM25)", "InfoNCE", [1, 2, 3])
    config = yaml.safe_load((folder / "training_config.yaml").read_text())
    assert config["loss"] == {"name": "SoftInfoNCELoss", "config": SoftInfoNCELoss().get_config_dict()}
    assert config["training_args"]["learning_rate"] == 2e-5
    assert config["training_args"]["hub_token"] == "<redacted>"
    assert "output_dir" not in config["training_args"]
    assert config["data"]["splits"] == {"train": 1200}


def test_save_refuses_a_non_empty_folder(tiny_model, tmp_path, no_stored_token):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "pytorch_model.bin").write_bytes(b"stale")
    with pytest.raises(FileExistsError, match="not empty"):
        save_run_folder(tiny_model, make_summary(), tmp_path / "run")


def test_summary_rejects_missing_rows_and_wrong_seed_counts():
    with pytest.raises(ValueError, match=r"baseline='MNRL' has no row in any evaluation"):
        make_summary(baseline="MNRL")
    with pytest.raises(ValueError, match="one value per seed"):
        make_summary(seeds=[1, 2])
    results = {"InfoNCE": {"mrr@1000": float("nan")}, "SoftInfoNCE (BM25)": {"mrr@1000": 0.5}}
    with pytest.raises(ValueError, match="finite"):
        make_summary(evaluations=[EvalSummary("x", results, queries=1, corpus_size=2)], base_row=None)


def test_describe_loss_reads_a_real_sentence_transformers_loss(tiny_model):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    fields = describe_loss(MultipleNegativesRankingLoss(tiny_model, scale=15.0))
    assert fields["loss_name"] == "MultipleNegativesRankingLoss"
    assert fields["loss_config"]["scale"] == 15.0
    assert len(fields["citations"]) == 1 and "@" in fields["citations"][0]


def test_local_base_model_path_stays_out_of_the_card(tmp_path):
    card = ModelCard(render_model_card(make_summary(base_model=str(tmp_path))))
    assert card.data.base_model is None  # the Hub rejects a non-Hub id there
    assert str(tmp_path) not in card.content  # and a local path means nothing on the Hub
    assert "a local model (not on the Hub)" in card.text


def test_check_refuses_pickle_weights_and_remote_code(run_folder):
    _, folder = run_folder
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    (folder / "modeling_custom.py").write_text("class Custom: pass\n")
    with pytest.raises(RunFolderError) as error:
        check_run_folder(folder)
    assert "pytorch_model.bin" in str(error.value) and "modeling_custom.py" in str(error.value)


# ------------------------------------------------------------------------------------------------------ upload


def test_push_uploads_the_folder_with_the_requested_options(run_folder, monkeypatch):
    _, folder = run_folder
    fake = FakeHub(monkeypatch)
    commit = push_run(folder, "someone/tiny", token=FAKE_TOKEN, private=True, revision="exp-1", create_pr=True)

    (create,) = fake.named("create_repo")
    assert create["args"] == ("someone/tiny",) and create["private"] is True and create["exist_ok"] is True
    (branch,) = fake.named("create_branch")
    assert branch["args"] == ("someone/tiny",) and branch["branch"] == "exp-1"
    (upload,) = fake.named("upload_folder")
    assert upload["repo_id"] == "someone/tiny"
    assert (upload["revision"], upload["create_pr"], upload["repo_type"]) == ("exp-1", True, "model")
    assert Path(upload["folder_path"]) == folder
    assert upload["files_at_upload"] == check_run_folder(folder)
    assert "*.bin" in upload["delete_patterns"]  # pickles of an earlier upload go away
    assert commit.pr_url.endswith("/discussions/1")


def test_push_without_revision_commits_to_main(run_folder, monkeypatch):
    _, folder = run_folder
    fake = FakeHub(monkeypatch)
    push_run(folder, "someone/tiny", token=FAKE_TOKEN)
    assert fake.named("create_branch") == []
    (upload,) = fake.named("upload_folder")
    assert (upload["revision"], upload["create_pr"]) == (None, False)
    assert fake.named("create_repo")[0]["private"] is False


def test_push_refuses_a_folder_holding_the_token(run_folder, monkeypatch):
    _, folder = run_folder
    secret = "hf_plantedsecret"  # not token-shaped: found because it is the token in use
    (folder / "notes.txt").write_text(f"pushed with {secret}\n")
    monkeypatch.setenv("HF_TOKEN", secret)  # the token in use comes from the standard place
    fake = FakeHub(monkeypatch)
    with pytest.raises(RunFolderError, match="notes.txt contains a Hugging Face token") as error:
        push_run(folder, "someone/tiny")
    assert secret not in str(error.value)
    assert fake.calls == []  # nothing reached the Hub


def test_push_refuses_any_token_shaped_string(run_folder, monkeypatch):
    _, folder = run_folder
    config = json.loads((folder / "config.json").read_text())
    config["leaked"] = FAKE_TOKEN
    (folder / "config.json").write_text(json.dumps(config))
    fake = FakeHub(monkeypatch)
    with pytest.raises(RunFolderError, match="config.json contains a Hugging Face token"):
        push_run(folder, "someone/tiny", token="hf_other")
    assert fake.calls == []


# ---------------------------------------------------------------------------------------------------- preflight


def test_preflight_without_token_says_how_to_log_in(no_stored_token, monkeypatch):
    fake = FakeHub(monkeypatch)
    with pytest.raises(HubAccessError) as error:
        preflight_push("someone/tiny")
    message = str(error.value)
    assert "No Hugging Face token" in message and "hf auth login" in message and "HF_TOKEN" in message
    assert fake.calls == []  # failed locally, before any request


def test_cli_push_without_token_fails_before_uploading(run_folder, monkeypatch, capsys):
    _, folder = run_folder
    fake = FakeHub(monkeypatch)
    from hf_softnce.cli import main

    assert main(["push", str(folder), "someone/tiny", "--private"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-softnce: error: No Hugging Face token") and "hf auth login" in err
    assert err.count("\n") == 1  # one line, no traceback
    assert fake.calls == []


def test_cli_push_passes_its_options_through(run_folder, online, monkeypatch, capsys):
    _, folder = run_folder
    fake = FakeHub(monkeypatch)
    parser = argparse.ArgumentParser(prog="hf-softnce")
    register(parser.add_subparsers(dest="command"))
    argv = ["push", str(folder), "tiny", "--private", "--revision", "exp", "--create-pr", "--token", FAKE_TOKEN]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    (upload,) = fake.named("upload_folder")
    assert (upload["repo_id"], upload["revision"], upload["create_pr"]) == ("someone/tiny", "exp", True)
    assert fake.named("create_repo")[0]["private"] is True
    out = capsys.readouterr()
    assert out.out.strip() == "https://huggingface.co/someone/tiny/discussions/1"
    assert FAKE_TOKEN not in out.out + out.err


@pytest.fixture
def online(monkeypatch):
    """Preflight refuses offline mode; these tests fake the Hub at HfApi instead."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_preflight_in_offline_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubAccessError, match="HF_HUB_OFFLINE"):
        preflight_push("someone/tiny", token=FAKE_TOKEN)


def test_preflight_resolves_a_bare_name_to_the_user_namespace(online, monkeypatch):
    FakeHub(monkeypatch)
    assert preflight_push("tiny", token=FAKE_TOKEN) == "someone/tiny"
    assert preflight_push("team/tiny", token=FAKE_TOKEN) == "team/tiny"  # an org of the user


def test_preflight_rejects_a_foreign_namespace(online, monkeypatch):
    FakeHub(monkeypatch)
    with pytest.raises(HubAccessError, match=r"'stranger' is neither your user \('someone'\).*team"):
        preflight_push("stranger/tiny", token=FAKE_TOKEN)


def test_preflight_rejects_read_only_token_and_repo_without_write_access(online, monkeypatch):
    FakeHub(monkeypatch, whoami={"name": "someone", "auth": {"accessToken": {"role": "read"}}})
    with pytest.raises(HubAccessError, match="read-only"):
        preflight_push("someone/tiny", token=FAKE_TOKEN)

    fake = FakeHub(monkeypatch, existing={"team/shared"})
    with pytest.raises(HubAccessError, match="cannot write to team/shared") as error:
        preflight_push("team/shared", token=FAKE_TOKEN)
    assert fake.named("auth_check")[0]["write"] is True
    assert FAKE_TOKEN not in str(error.value)


def test_preflight_rejected_token_and_unreachable_hub(online, monkeypatch):
    import httpx2
    from huggingface_hub.utils import hf_raise_for_status

    def rejected(api, *args, **kwargs):
        request = httpx2.Request("GET", "https://huggingface.co/api/whoami-v2")
        hf_raise_for_status(httpx2.Response(401, json={"error": "Invalid credentials"}, request=request))

    monkeypatch.setattr(HfApi, "whoami", rejected)
    with pytest.raises(HubAccessError, match=r"(?s)did not accept the token.*hf auth login"):
        preflight_push("someone/tiny", token=FAKE_TOKEN)

    def unreachable(api, *args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(HfApi, "whoami", unreachable)
    with pytest.raises(HubAccessError, match="Could not reach the Hugging Face Hub"):
        preflight_push("someone/tiny", token=FAKE_TOKEN)


def test_preflight_private_on_an_existing_public_repo(online, monkeypatch):
    FakeHub(monkeypatch, existing={"someone/tiny"}, writable={"someone/tiny"}, public={"someone/tiny"})
    assert preflight_push("someone/tiny", token=FAKE_TOKEN) == "someone/tiny"
    with pytest.raises(HubAccessError, match="exists and is public"):
        preflight_push("someone/tiny", token=FAKE_TOKEN, private=True)


def test_redact_hides_the_token_in_messages():
    assert hub.redact(f"401 for {FAKE_TOKEN}", None) == "401 for hf_<redacted>"
    assert hub.redact("bad token sekrit", "sekrit") == "bad token <token>"


# ------------------------------------------------------------------------------------------ download from cache


def test_download_through_a_prefilled_hub_cache_offline(run_folder, tmp_path, monkeypatch):
    """The pushed folder, as the Hub cache would hold it, loads by repo id with HF_HUB_OFFLINE=1."""
    from sentence_transformers import SentenceTransformer

    model, folder = run_folder
    assert constants.HF_HUB_OFFLINE  # conftest sets it before huggingface_hub is imported
    cache = tmp_path / "hub_cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--tiny-soft-infonce"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)

    downloaded = SentenceTransformer("someone/tiny-soft-infonce", cache_folder=str(cache), device="cpu")
    np.testing.assert_allclose(downloaded.encode(TEXTS), model.encode(TEXTS), rtol=0, atol=1e-6)
    with pytest.raises(OSError):  # and it really came from that cache: another id is not there
        SentenceTransformer("someone/not-cached", cache_folder=str(cache), device="cpu")


# -------------------------------------------------------------------------------------------- template loading


def test_templates_load_from_the_checkout_then_the_installed_subpackage(tmp_path, monkeypatch):
    """The checkout beside the package first (an editable install may map another checkout), then the installed
    hf_softnce.model_cards that setup.py maps model_cards/ to."""
    import importlib.util
    import sys

    package = tmp_path / "installed_model_cards"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model_card.md.j2").write_text("installed template")
    spec = importlib.util.spec_from_file_location(
        "hf_softnce.model_cards", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "hf_softnce.model_cards", module)
    checkout = Path(hub_card.__file__).resolve().parents[2] / "model_cards" / "model_card.md.j2"
    assert hub_card._template_text("model_card.md.j2") == checkout.read_text(encoding="utf-8")
    # Installed: no checkout beside the package.
    monkeypatch.setattr(hub_card, "__file__", str(tmp_path / "elsewhere" / "hf_softnce" / "hub" / "card.py"))
    assert hub_card._template_text("model_card.md.j2") == "installed template"

    monkeypatch.setitem(sys.modules, "hf_softnce.model_cards", None)  # import fails, as before setup.py maps it
    with pytest.raises(ModuleNotFoundError):  # neither installed nor next to the package: a clear failure
        hub_card._template_text("model_card.md.j2")


def test_metric_labels():
    assert [hub.metric_label(m) for m in ("mrr@1000", "recall@5", "ndcg@10", "dedup_recall@1")] == [
        "MRR@1000",
        "Recall@5",
        "NDCG@10",
        "Recall@1 (dedup)",
    ]


# ------------------------------------------------------------------------- the token scan: names, compression, UTF-16


def refusal(folder, secrets=()) -> str:
    with pytest.raises(RunFolderError) as error:
        check_run_folder(folder, secrets=secrets)
    message = str(error.value)
    assert FAKE_TOKEN not in message and all(secret not in message for secret in secrets)
    return message.split("\n- ", 1)[1]  # the problems, after "Refusing to upload <folder>:"


def test_a_folder_with_unreadable_or_foreign_json_is_refused_with_every_problem_listed(run_folder):
    """modules.json or a config.json that is not the JSON it should be: one line each among the folder's problems
    (not a traceback); a module of another package (remote code) and a config's auto_map are refused too."""
    _, folder = run_folder
    check_run_folder(folder)
    modules = (folder / "modules.json").read_text()
    for text, problem in (('{"a": 1}', "modules.json is not a list of modules (objects with a 'type')"),
                          ('["x"]', "modules.json is not a list of modules (objects with a 'type')"),
                          ('[{"type": null}]', "module None is not a sentence-transformers class (needs remote code)"),
                          ('[{"type": "mypkg.Layer"}]',
                           "module 'mypkg.Layer' is not a sentence-transformers class (needs remote code)"),
                          ("{bad", "modules.json is not readable JSON (Expecting property name enclosed in double "
                                   "quotes: line 1 column 2 (char 1))")):
        (folder / "modules.json").write_text(text)
        assert refusal(folder) == problem, text
    (folder / "modules.json").write_text(modules)
    (folder / "config.json").write_text('{"auto_map": {"AutoModel": "x.Y"}}')
    assert refusal(folder) == "config.json has an auto_map (would need trust_remote_code)"
    (folder / "config.json").write_bytes(b"\xff\xfe{")
    assert refusal(folder).startswith("config.json is not readable JSON (")


def test_scan_finds_a_token_in_a_file_name(run_folder):
    _, folder = run_folder
    (folder / "logs").mkdir()
    (folder / "logs" / f"run-{FAKE_TOKEN}.txt").write_text("nothing secret inside\n")
    assert refusal(folder) == "the file name 'logs/run-hf_<redacted>.txt' contains a Hugging Face token"


def test_scan_reads_inside_gzip_bz2_xz_and_zip(run_folder):
    import bz2
    import gzip
    import lzma
    import zipfile

    _, folder = run_folder
    text = f"token = {FAKE_TOKEN}\n".encode() * 20
    (folder / "clean.log.gz").write_bytes(gzip.compress(b"loss 0.5\n" * 1000))
    check_run_folder(folder)  # a compressed file without a token is fine
    for name, data in (("a.log.gz", gzip.compress(text)), ("b.log.bz2", bz2.compress(text)),
                       ("c.log.xz", lzma.compress(text))):
        (folder / name).write_bytes(data)
        assert text not in data  # compressed: invisible to a scan of the raw bytes
        kind = name.rsplit(".", 1)[1].replace("gz", "gzip")
        assert refusal(folder) == f"{name} contains a Hugging Face token ({kind}-compressed)"
        (folder / name).unlink()
    with zipfile.ZipFile(folder / "d.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner/notes.txt", text)
    assert refusal(folder) == "d.zip contains a Hugging Face token (zip member 'inner/notes.txt')"


def test_scan_reads_archives_inside_archives_and_refuses_deeper_nesting(run_folder):
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    from hf_softnce.hub.scan import MAX_ARCHIVE_DEPTH

    _, folder = run_folder
    text = f"token = {FAKE_TOKEN}\n".encode()

    def zipped(name: str, data: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, data)
        return buffer.getvalue()

    (folder / "a.zip").write_bytes(zipped("n.txt.gz", gzip.compress(text)))
    assert refusal(folder) == "a.zip contains a Hugging Face token (zip member 'n.txt.gz') (gzip-compressed)"
    (folder / "a.zip").unlink()
    (folder / "b.zip.gz").write_bytes(gzip.compress(zipped("inner.zip", zipped("n.txt", text))))
    assert refusal(folder) == ("b.zip.gz contains a Hugging Face token (gzip-compressed) (zip member 'inner.zip') "
                               "(zip member 'n.txt')")
    (folder / "b.zip.gz").unlink()
    (folder / "c.xz").write_bytes(lzma.compress(bz2.compress(text)))
    assert refusal(folder) == "c.xz contains a Hugging Face token (xz-compressed) (bz2-compressed)"
    (folder / "c.xz").unlink()
    deep = text
    for _ in range(MAX_ARCHIVE_DEPTH + 1):
        deep = gzip.compress(deep)
    (folder / "d.gz").write_bytes(deep)
    assert refusal(folder).startswith(f"d.gz nests archives deeper than {MAX_ARCHIVE_DEPTH} (gzip-compressed)")
    (folder / "d.gz").unlink()
    # Members whose data only starts like gzip or rar (a tensor's bytes in a torch checkpoint) are data, scanned raw.
    (folder / "weights.bin.zip").write_bytes(zipped("archive/data/0", b"\x1f\x8b" + bytes(range(256)) * 4))
    check_run_folder(folder)
    (folder / "weights.bin.zip").write_bytes(zipped("archive/data/1", b"Rar!" + bytes(range(256)) * 4))
    check_run_folder(folder)
    (folder / "weights.bin.zip").unlink()
    # A stream that starts as gzip and breaks, inside an archive, cannot be cleared: refused.
    broken = gzip.compress(text + bytes(range(256)) * 64)
    (folder / "e.zip").write_bytes(zipped("notes.txt.gz", broken[: len(broken) // 2]))
    assert refusal(folder).startswith("e.zip holds a gzip stream (zip member 'notes.txt.gz') that breaks after its "
                                      "start")
    (folder / "e.zip").unlink()
    # tar: plain members are read raw; compressed members and archives in them are opened.
    import tarfile

    for mode, name in (("w:gz", "f.tar.gz"), ("w", "f.tar")):
        with tarfile.open(folder / name, mode) as archive:
            member = tarfile.TarInfo("inner/notes.txt.gz")
            data = gzip.compress(text)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
        where = " (gzip-compressed)" if mode == "w:gz" else ""
        assert refusal(folder) == (f"{name} contains a Hugging Face token{where} (tar member 'inner/notes.txt.gz') "
                                   "(gzip-compressed)")
        (folder / name).unlink()


def test_scan_finds_tokens_in_utf16_text(run_folder, monkeypatch):
    _, folder = run_folder
    (folder / "notes.txt").write_text(f"pushed with {FAKE_TOKEN}\n", encoding="utf-16")  # with a BOM, little-endian
    assert refusal(folder) == "notes.txt contains a Hugging Face token"
    (folder / "notes.txt").write_text("pushed with hf_plantedsecret\n", encoding="utf-16-be")
    assert refusal(folder, secrets=["hf_plantedsecret"]) == "notes.txt contains a Hugging Face token"


def test_scan_refuses_what_it_cannot_read(run_folder):
    import gzip

    _, folder = run_folder
    (folder / "e.log.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 32)
    assert refusal(folder) == "e.log.zst is zstd-compressed and cannot be scanned for tokens (upload it uncompressed)"
    (folder / "e.log.zst").unlink()
    data = gzip.compress(b"x" * 1000)
    (folder / "f.log.gz").write_bytes(data[: len(data) // 2])  # truncated inside the compressed stream
    assert refusal(folder).startswith("f.log.gz holds a gzip stream that breaks after its start and cannot be "
                                      "scanned for tokens (")
    (folder / "f.log.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 40)  # gzip's magic, no valid header
    assert refusal(folder).startswith("f.log.gz looks gzip-compressed but cannot be decompressed to scan for tokens (")

# -- the card: built on sentence-transformers' card data, never its stock card ---------------------------------


def test_card_is_built_on_sentence_transformers_card_data_without_its_stock_card(tiny_model):
    tiny_model.model_card_data.add_tags("custom-tag")
    evaluation = replace(make_summary().evaluations[0], intervals=[
        {"name": "SoftInfoNCE (BM25)", "mrr": 0.6843, "delta_vs_base": (0.0123, -0.004, 0.029),
         "delta_vs_infonce": (0.0031, -0.0101, 0.0160)},
        {"name": "InfoNCE", "mrr": 0.6812, "delta_vs_base": (0.02, 0.005, 0.035), "delta_vs_infonce": None},
        {"name": "zero-shot", "mrr": 0.301, "delta_vs_base": (0.0001, 0.00003, 0.0002), "delta_vs_infonce": None},
    ])
    summary = make_summary(wise_ft_weight=0.5, evaluations=[evaluation])
    card = ModelCard(render_model_card(summary, tiny_model))
    metadata = card.data.to_dict()
    assert metadata["library_name"] == "sentence-transformers" and metadata["pipeline_tag"] == "sentence-similarity"
    assert "custom-tag" in metadata["tags"] and "loss:SoftInfoNCELoss" in metadata["tags"]  # its tags, our loss
    assert metadata["license"] == "apache-2.0" and metadata["language"] == ["en", "code"]
    for placeholder in hub.STOCK_CARD_PLACEHOLDERS:
        assert placeholder not in card.content
    assert "### Framework Versions" not in card.text and "# sentence-transformers model card" not in card.text
    assert "sentence_transformers version" in card.text  # the versions it records, in our model details
    assert not [r for r in card.data.eval_results if r.metric_type.startswith("cosine_")]
    assert ("| **SoftInfoNCE (BM25) (this model)** | 0.6843 | +0.0123 [-0.0040, +0.0290] | +0.0031 [-0.0101, +0.0160] |"
            in card.text)
    # In the results table's order (the baseline before this model); bold where the interval excludes 0 as shown.
    assert "| zero-shot | 0.3010 | +0.0001 [+0.0000, +0.0002] | – |" in card.text
    assert card.text.index("| InfoNCE | 0.6812 | **+0.0200 [+0.0050, +0.0350]** | – |") < card.text.index(
        "| **SoftInfoNCE (BM25) (this model)** | 0.6843")
    assert "weight 0.5 on the fine-tuned model" in card.text
    assert "model.encode_query(queries)" in card.text and "model.encode(" not in card.text
    with pytest.raises(ValueError, match=r"pairs: intervals\[0\]\['delta_vs_base'\] must be \(diff, lo, hi\)"):
        replace(evaluation, intervals=[{"name": "x", "delta_vs_base": 0.1}])


def test_a_single_run_is_never_compared_with_itself(tiny_model):
    """The push-path card of one run said "Side by side with the `this run` baseline", every delta +0.0000."""
    evaluation = EvalSummary("CoSQA dev-500", {"this run": {"mrr@1000": 0.61}}, queries=500, corpus_size=6267,
                             dataset_id=COSQA_DATASET_ID, split="dev")
    summary = make_summary(method="this run", baseline="this run", base_row=None, evaluations=[evaluation], seeds=[42],
                           repo_id=None)
    text = ModelCard(render_model_card(summary, tiny_model)).text
    assert "Side by side" not in text and "+0.0000" not in text and "baseline" not in text
    assert 'SentenceTransformer(".")' in text  # no repository yet: the folder itself, not a placeholder id
    assert "500 queries over 6,267 codes" in text

    with_base = EvalSummary("CoSQA dev-500", {"base": {"mrr@1000": 0.55}, "this run": {"mrr@1000": 0.61}},
                            queries=500, corpus_size=6267, dataset_id=COSQA_DATASET_ID, split="dev")
    card = ModelCard(render_model_card(
        make_summary(method="this run", baseline=None, base_row="base", evaluations=[with_base], seeds=[42]), tiny_model))
    assert "| base | 0.5500 |" in card.text and "| **this run (this model)** | 0.6100 |" in card.text
    assert "Side by side" not in card.text
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("mrr@1000", 0.61)]  # ours only


def test_check_refuses_the_stock_sentence_transformers_card(run_folder):
    model, folder = run_folder
    (folder / "README.md").unlink()
    model.save(str(folder))  # sentence-transformers writes its own card, with its placeholders
    with pytest.raises(RunFolderError, match="placeholder"):
        check_run_folder(folder)


def test_public_values_leave_out_local_paths_and_tokens(tmp_path):
    values = {"output_dir": str(tmp_path / "run"), "model": str(tmp_path), "weighter_model": "./runs/simcse/final",
              "sources": ["stdlib", str(tmp_path)], "hub_token": FAKE_TOKEN, "learning_rate": 2e-5,
              "model_id": "sentence-transformers/all-MiniLM-L6-v2"}
    assert hub.public_values(values) == {
        "model": "<local>", "weighter_model": "<local>", "sources": ["stdlib", "<local>"], "hub_token": "<redacted>",
        "learning_rate": 2e-5, "model_id": "sentence-transformers/all-MiniLM-L6-v2",
    }


def test_card_counts_the_duplicate_groups_training_used():
    """The card said `duplicate groups: 0` while training masked 764 groups; then a number unlike the loss's."""
    from datasets import Dataset

    from hf_softnce.training.data import TaskData
    from hf_softnce.training.publish import data_summary

    train = Dataset.from_dict(
        {"query": list("abcdef"), "code": list("ABCDEF"), "dup_group": ["g1", "g1", "g2", "g2", "g2", "g3"]}
    )
    summary = data_summary(TaskData("python", train, None, None, sources=["stdlib"]))
    assert summary.counts == {"duplicate groups": 2}  # g3 is a single row: nothing to mask
    # With the loss config, its count (every group it knows) is the one called "duplicate groups".
    summary = data_summary(TaskData("python", train, None, None, sources=["stdlib"]), {"duplicate_group_count": 3})
    assert summary.counts == {"duplicate groups": 3, "duplicate groups with two or more rows": 2}
    assert summary.datasets == [] and "embedded corpus, no Hub id" in summary.sources[0]


def test_training_sources_name_their_hub_ids(tmp_path):
    from datasets import Dataset

    from hf_softnce.training.data import TaskData
    from hf_softnce.training.publish import data_summary

    train = Dataset.from_dict({"query": ["q"], "code": ["c"]})
    sources = ["cosqa", "conala-curated (120 pairs)", "codesearchnet-python", str(tmp_path)]
    summary = data_summary(TaskData("cosqa", train, None, None, sources=sources))
    assert summary.datasets == ["CoIR-Retrieval/cosqa", "neulab/conala", "code-search-net/code_search_net"]
    assert summary.sources[-1] == "a local dataset (not on the Hub)" and str(tmp_path) not in str(summary)


def test_two_evaluations_never_share_a_model_index_entry():
    """huggingface_hub merges model-index results by dataset type and split: the CoSQA dev halves once mixed."""
    halves = [EvalSummary(name, {"SoftInfoNCE (BM25)": {"mrr@1000": value}}, queries=250, corpus_size=6267,
                          dataset_id=COSQA_DATASET_ID, split="dev") for name, value in (("select", 0.5), ("report", 0.6))]
    with pytest.raises(ValueError, match="share dataset 'CoIR-Retrieval/cosqa' and split 'dev'"):
        hub.eval_results(make_summary(evaluations=halves, baseline=None, base_row=None, seeds=[1]))


def test_uniform_soft_infonce_is_named_and_cited_as_infonce_on_the_card(tiny_model):
    """SoftInfoNCELoss(model, None) computes InfoNCE; a card naming Soft-InfoNCE for it credits the wrong paper."""
    from hf_softnce.losses import SoftInfoNCELoss as RealSoftInfoNCELoss
    from hf_softnce.weighting import UniformWeighter

    for loss in (RealSoftInfoNCELoss(tiny_model, None), RealSoftInfoNCELoss(tiny_model, UniformWeighter())):
        fields = describe_loss(loss)
        assert fields["loss_name"] == "InfoNCE"
        (citation,) = fields["citations"]
        assert "1807.03748" in citation and "2310.08069" not in citation  # MNRL's InfoNCE citation
        card = render_model_card(make_summary(**fields, method="InfoNCE", baseline=None))
        assert "with `InfoNCE`" in card and "loss:InfoNCE" in card and "Rethinking Negative Pairs" not in card
        assert "weighted by" not in card
    baseline = RealSoftInfoNCELoss(tiny_model, None, variant="kl_regularized")
    assert describe_loss(baseline)["loss_name"] == "SoftInfoNCELoss" and "2310.08069" in baseline.citation


def test_any_sentence_transformers_loss_is_described_by_its_class_config_and_citation(tiny_model):
    """A peer row (MNRL with hardness weighting, GISTEmbed with a guide) gets a card of its own loss."""
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    hardness = describe_loss(MultipleNegativesRankingLoss(tiny_model, hardness_mode="in_batch_negatives",
                                                          hardness_strength=5.0))
    assert hardness["loss_name"] == "MultipleNegativesRankingLoss"
    assert hardness["loss_config"]["hardness_mode"] == "in_batch_negatives"
    assert hardness["loss_config"]["hardness_strength"] == 5.0
    gist = describe_loss(GISTEmbedLoss(tiny_model, guide=tiny_model))
    assert gist["loss_name"] == "GISTEmbedLoss" and isinstance(gist["loss_config"]["guide"], str)
    assert gist["citations"] and "@" in gist["citations"][0]
    card = render_model_card(make_summary(**gist, method="InfoNCE", baseline=None))
    assert "loss:GISTEmbedLoss" in card and "Pooling(" not in card  # the guide by name, not its module repr


def test_card_training_args_show_the_loss_values_used_and_only_the_data_that_trained():
    from hf_softnce.training.config import TrainConfig
    from hf_softnce.training.publish import card_training_args

    loss_config = {"alpha": 1.5, "beta": 0.5, "scale": 20.0}
    cosqa = card_training_args(TrainConfig(data="cosqa", beta=0.7), loss_config)
    assert (cosqa["alpha"], cosqa["beta"]) == (1.5, 0.7)  # None shows the loss's value; a set value stays
    assert "sources" not in cosqa  # the stdlib corpus did not train a CoSQA model
    python = card_training_args(TrainConfig(data="python"), loss_config)
    assert python["sources"] == ["stdlib"] and python["alpha"] == 1.5


def test_card_training_args_leave_out_what_did_not_train_the_model():
    from hf_softnce.training.config import TrainConfig
    from hf_softnce.training.models import display_name
    from hf_softnce.training.publish import card_training_args

    soft = card_training_args(TrainConfig(loss="soft_infonce", alpha=1.3, num_negatives=1), {})
    assert soft["alpha"] == 1.3 and soft["weighter"] == "bm25" and soft["mining_strategy"] == "window"
    assert soft["miner_model"] == display_name("default")  # None: the base model mined, shown by its name
    assert "conala_config" not in soft and "docstring_part" not in soft  # their switches are off
    mixed = card_training_args(TrainConfig(conala_mix=0.5, docstring_rate=0.2, miner_model="other/miner"), {})
    assert (mixed["conala_config"], mixed["docstring_part"]) == ("curated", "rest")
    assert "miner_model" not in mixed  # no negative mined (num_negatives=0)
    assert not {"gist_margin", "guide_model", "hardness_mode", "order_weight", "ranker_top_k"} & set(soft)
    gist = card_training_args(TrainConfig(loss="gist", guide_model="default", gist_margin=0.05), {})
    assert (gist["guide_model"], gist["gist_margin"]) == (display_name("default"), 0.05)  # one name for the model
    # in-batch negatives only: nothing was mined, no weighter weighted anything
    assert not {"alpha", "weighter", "mining_strategy", "miner_model", "ranker_negatives"} & set(gist)
    order = card_training_args(TrainConfig(loss="order_infonce", weighter="trained_model"), {})
    assert order["weighter"] == "trained_model" and "order_weight" in order and "alpha" not in order
    ranker = card_training_args(TrainConfig(loss="soft_infonce", ranker_top_k=5), {}, ranker=True)
    assert ranker["ranker_top_k"] == 5 and ranker["mining_strategy"] == "window"
    assert not {"alpha", "weighter", "gist_margin", "hardness_strength"} & set(ranker)
    assert ranker["learning_rate"] == soft["learning_rate"] == 2e-5  # the shared optimisation settings stay


def test_the_model_details_give_a_shorter_training_length_beside_the_maximum(tiny_model):
    """Trained at 64 tokens, read at the model's own length: the model details show both; equal lengths, one."""
    tiny_model.max_seq_length = 48
    shorter = ModelCard(render_model_card(make_summary(training_args={"max_seq_length": 16}), tiny_model)).text
    facts = [line for line in shorter.splitlines() if "sequence length" in line.lower() and line.startswith("|")]
    assert facts == ["| Maximum sequence length | 48 |", "| Training sequence length | 16 (texts were cut to it in "
                     "training) |"]
    same = ModelCard(render_model_card(make_summary(training_args={"max_seq_length": 48}), tiny_model)).text
    assert "Training sequence length" not in same and "| Maximum sequence length | 48 |" in same
