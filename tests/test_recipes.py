"""The recipes end to end, as a user runs them: real subprocesses (`python recipes/X.py`, `accelerate launch`),
a tiny random BERT with a real tokenizer, and a tiny corpus mined from real standard-library modules."""

from __future__ import annotations

import copy
import json
import os
import signal
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
import yaml
from transformers import TrainerCallback

from conftest import tiny_model_dir
from hf_softnce.training.config import TrainConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
# A few real stdlib modules, each its own package, so the package-level split has valid and test rows.
MODULES = (
    "textwrap", "shlex", "fnmatch", "glob", "colorsys", "calendar", "difflib", "ftplib", "smtplib", "imaplib",
    "gettext", "tarfile", "mailbox",
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> str:
    from hf_softnce.data import build_python_corpus

    root = tmp_path_factory.mktemp("recipe_data")
    sources = root / "src"
    sources.mkdir()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in MODULES:
        shutil.copy(stdlib / f"{name}.py", sources / f"{name}.py")
    corpus = build_python_corpus(
        sources=[str(sources)], output_dir=root / "corpus", cache=False, workers=1, progress=False
    )
    assert all(len(corpus[split]) >= 16 for split in ("train", "valid", "test")), corpus
    return str(root / "corpus")


@pytest.fixture(scope="module")
def tiny_model() -> str:
    # Built here, before any `accelerate launch`: once a process group exists transformers saves on rank 0 only.
    return tiny_model_dir()


def tiny_config(tmp_path: Path, tiny_model: str, tiny_data: str, name: str = "tiny.yaml", **values) -> Path:
    config = {
        "model": tiny_model,
        "data": tiny_data,
        "cosqa_dir": None,
        "max_train_pairs": 64,
        "max_eval_queries": 16,
        "max_seq_length": 64,
        "batch_size": 8,  # BM25's paper alpha/beta need more than 3 negatives per row
        "max_steps": 3,
        "logging_steps": 1,
        "use_cpu": True,
        "output_dir": str(tmp_path / "run"),
        **values,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def recipe_env(**extra) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_recipe(recipe: str, config: Path, *args: str, env=None, launcher=(sys.executable,), timeout=300):
    command = [*launcher, str(RECIPES / recipe), "--config", str(config), *args]
    # Its own session: on a timeout every rank the launcher started is killed with it, none left running.
    with subprocess.Popen(command, cwd=ROOT, env=env or recipe_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nSTDOUT:\n{result.stdout[-3000:]}\nSTDERR:\n{result.stderr[-6000:]}"
    return result


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trainer_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "trainer_state.json").read_text())


# ----------------------------------------------------------------------------------------------- each recipe


def test_train_soft_infonce_recipe(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tmp_path, tiny_model, tiny_data)
    # SentenceTransformerTrainingArguments fields hf_softnce has no key of its own for pass straight through
    passed = ("gradient_accumulation_steps=2", "lr_scheduler_type=constant", "report_to=none", "hub_model_id=me/tiny")
    result = check(run_recipe("train_soft_infonce.py", config, "learning_rate=1e-4", "weighter=bm25", "evaluate_base=true",
                              *passed))
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_mrr@1000"] <= 1.0 and "test_ndcg@10" in metrics
    saved = json.loads((run / "config.json").read_text())
    assert saved["learning_rate"] == 1e-4 and saved["loss"] == "soft_infonce"  # the override won over the YAML
    assert saved["gradient_accumulation_steps"] == 2 and saved["hub_model_id"] == "me/tiny"
    args = torch.load(run / "checkpoint-3" / "training_args.bin", weights_only=False)  # what the trainer used
    assert (args.gradient_accumulation_steps, args.lr_scheduler_type, args.report_to, args.hub_model_id) == (
        2, "constant", [], "me/tiny")
    assert args.learning_rate == 1e-4
    assert (run / "final" / "modules.json").exists()
    assert trainer_state(run / "checkpoint-3")["global_step"] == 3
    assert "Saved the model to" in result.stdout
    # The end-of-run table: the base model beside the trained one (evaluate_base), each number once.
    base = json.loads((run / "base_metrics.json").read_text())
    header = "| model | MRR@1000 | R@1 | R@5 | R@10 | NDCG@10 | Δ MRR vs base |"
    assert "**test**" in result.stdout and result.stdout.count(header) == 1
    assert f"| base model | {base['test_mrr@1000']:.4f} |" in result.stdout and "| trained | " in result.stdout


def test_save_steps_alone_checkpoints_and_evaluates_every_save_steps(tmp_path, tiny_model, tiny_data):
    # The best checkpoint is chosen on valid (cosqa_dir is null), so every save needs an evaluation beside it.
    config = tiny_config(tmp_path, tiny_model, tiny_data, save_steps=2, max_steps=4, save_total_limit=None)
    check(run_recipe("train_soft_infonce.py", config))
    state = trainer_state(tmp_path / "run" / "checkpoint-4")
    assert [entry["step"] for entry in state["log_history"] if "eval_valid_mrr@1000" in entry] == [2, 4]
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_train_order_infonce_recipe_mines_and_labels(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tmp_path, tiny_model, tiny_data, num_negatives=2, weighter="none", order_teacher=tiny_model)
    result = check(run_recipe("train_order_infonce.py", config))
    assert "Mined negatives for 64 of 64 rows" in result.stdout
    assert "Labelled 64 rows (128 negatives)" in result.stdout
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["loss"] == "order_infonce"
    assert "test_mrr@1000" in json.loads((run / "metrics.json").read_text())
    assert (run / "final" / "modules.json").exists()


def test_train_ranker_recipe_compares_retriever_and_cascade(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tmp_path, tiny_model, tiny_data, ranker_model=tiny_model, num_negatives=3, max_train_pairs=32,
                         ranker_head="released")
    result = check(run_recipe("train_ranker.py", config))
    assert "Mined negatives for 32 of 32 rows" in result.stdout
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"retriever", "cascade", "latency_ms_per_query"}
    assert {"mrr@1000", "recall@1", "ndcg@10"} <= set(metrics["test"]["cascade"])
    assert trainer_state(run / "checkpoint-3")["global_step"] == 3
    # Saved with the released head and the tanh it was trained with (CrossEncoder.predict returns tanh(logit)).
    modules = [m["type"] for m in json.loads((run / "ranker" / "modules.json").read_text())]
    assert [t.rsplit(".", 1)[-1] for t in modules] == ["Transformer", "Pooling", "Dense", "LayerNorm", "Dense"]
    saved = json.loads((run / "ranker" / "config_sentence_transformers.json").read_text())
    assert saved["activation_fn"] == "torch.nn.modules.activation.Tanh"

    from sentence_transformers import CrossEncoder

    ranker = CrossEncoder(str(run / "ranker"))
    assert ranker.num_labels == 1 and ranker.predict([("sort a list", "def f(x): return sorted(x)")]).shape == (1,)

    # hf_softnce's card: the cascade's numbers over the whole corpus, beside the retriever alone's.
    from huggingface_hub import ModelCard

    from hf_softnce.hub import check_run_folder

    card = ModelCard.load(run / "ranker" / "README.md")
    assert card.data.pipeline_tag == "text-ranking" and "loss:R2PSRankerLoss" in card.data.tags
    assert "Unnamed Dataset" not in card.content and str(tmp_path) not in card.content
    by_metric = {(r.dataset_split, r.metric_type): r for r in card.data.eval_results}
    result = by_metric[("test", "mrr@1000")]
    assert result.metric_value == metrics["test"]["cascade"]["mrr@1000"]
    assert result.dataset_args["corpus_size"] > 0 and "Side by side with the `retriever alone` baseline" in card.text
    assert 'CrossEncoder(".")' in card.text and "| **retriever → ranker (this model)** |" in card.text
    # `hf-softnce push RUN_DIR` takes the ranker/ folder with its card, nothing of the checkpoints.
    files = check_run_folder(run)
    assert "README.md" in files and "model.safetensors" in files and not [n for n in files if "checkpoint" in n]


def test_train_simcse_weighter_recipe_feeds_the_embedding_weighter(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tmp_path, tiny_model, tiny_data, scale=20.0)
    check(run_recipe("train_simcse_weighter.py", config))
    encoder = tmp_path / "run" / "final"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["global_step"] == 3 and metrics["texts"] > 0
    # hf_softnce's card, not the stock one: what the encoder is for, and its numbers for reference.
    from huggingface_hub import ModelCard

    card = ModelCard.load(encoder / "README.md")
    assert "Unnamed Dataset" not in card.content and "SimCSE query encoder" in card.data.model_name
    assert "WiSE-FT not applied" in card.text and card.data.eval_results
    assert str(tmp_path) not in card.content

    # The saved encoder is what weighter=embedding loads, through the same config path the recipes use.
    from hf_softnce.training.losses import build_weighter
    from hf_softnce.training.data import load_task_data
    from hf_softnce.weighting import EmbeddingWeighter

    train_config = load_config(config, {"weighter": "embedding", "weighter_model": str(encoder)})
    weighter = build_weighter(train_config, load_task_data(train_config, progress=False).train)
    assert isinstance(weighter, EmbeddingWeighter)


# ------------------------------------------------------------------------------------- two processes (gloo)


def test_two_process_launch_with_gathering_writes_metrics_once(tmp_path, tiny_model, tiny_data):
    # 4 pairs per rank, gathered: 8 in-batch candidates per query, as one process with batch_size=8 would see.
    config = tiny_config(tmp_path, tiny_model, tiny_data, batch_size=4, max_steps=4, eval_steps=2, save_steps=2)
    launcher = (
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
    )
    result = check(run_recipe("train_soft_infonce.py", config, "gather_across_devices=true", launcher=launcher))
    run = tmp_path / "run"
    state = trainer_state(run / "checkpoint-4")
    # 64 pairs, 4 per device: 8 steps per epoch with two ranks (16 with one), so step 4 is half an epoch.
    assert state["global_step"] == 4 and state["epoch"] == pytest.approx(0.5)
    assert json.loads((run / "config.json").read_text())["gather_across_devices"] is True
    assert "test_mrr@1000" in json.loads((run / "metrics.json").read_text())
    assert result.stdout.count("Saved the model to") == 1  # only the main process reports and writes
    rows = (run / "eval" / "CodeSearch_evaluation_valid_results.csv").read_text().strip().splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == ["2", "4"]  # one row per evaluation, not one per rank


def dropout_free_model_dir(path: Path) -> str:
    """A tiny BERT without dropout, so one and two processes compute the same gradients."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=66, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_two_process_ranker_training_equals_one_process(tmp_path, tiny_model, tiny_data):
    """One optimizer step on the same 8 rows: 8 rows in one process, or 4 + 4 on two ranks, must agree."""
    from safetensors.torch import load_file

    base = dropout_free_model_dir(tmp_path / "ranker_base")
    common = dict(ranker_model=base, num_negatives=3, max_train_pairs=8, max_steps=1, warmup_ratio=0.0,
                  weight_decay=0.0, learning_rate=1e-3)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = tiny_config(tmp_path / "one", tiny_model, tiny_data, batch_size=8, **common)
    two = tiny_config(tmp_path / "two", tiny_model, tiny_data, batch_size=4, **common)
    check(run_recipe("train_ranker.py", one))
    launcher = (
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
    )
    result = check(run_recipe("train_ranker.py", two, launcher=launcher))
    assert result.stdout.count("Saved the ranker to") == 1
    assert trainer_state(tmp_path / "two" / "run" / "checkpoint-1")["epoch"] == pytest.approx(1.0)  # 8 rows = 4 x 2 ranks
    assert "cascade" in json.loads((tmp_path / "two" / "run" / "metrics.json").read_text())["test"]

    start = load_file(str(Path(base) / "model.safetensors"))
    one_weights = load_file(str(tmp_path / "one" / "run" / "ranker" / "model.safetensors"))
    two_weights = load_file(str(tmp_path / "two" / "run" / "ranker" / "model.safetensors"))
    names = [name for name in one_weights if name.removeprefix("bert.") in start]
    assert len(names) > 10
    one_update = torch.cat([(one_weights[n] - start[n.removeprefix("bert.")]).flatten() for n in names])
    two_update = torch.cat([(two_weights[n] - start[n.removeprefix("bert.")]).flatten() for n in names])
    assert one_update.abs().max() > 1e-4  # the step moved the weights
    # Unsynchronised ranks (each stepping on its own 4 rows) give a cosine near 0.7 here.
    assert torch.nn.functional.cosine_similarity(one_update, two_update, dim=0) > 0.999
    # AdamW's first step is about lr * sign(grad): only weights whose gradient is near 0 may land elsewhere.
    assert ((two_update - one_update).abs() > 1e-5).float().mean() < 1e-3


# ---------------------------------------------------------------------------------------------- resuming


class CaptureResume(TrainerCallback):
    """Record what the resumed trainer starts from: its optimizer and scheduler state, and the first step."""

    def __init__(self):
        self.optimizer_state = self.scheduler_state = self.start_step = self.first_step = None

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        # Copies: the state dicts hold the live tensors, which the next steps update in place.
        self.optimizer_state = copy.deepcopy(optimizer.state_dict())
        self.scheduler_state = copy.deepcopy(lr_scheduler.state_dict())
        self.start_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.first_step is None:
            self.first_step = state.global_step


def test_resume_continues_from_the_last_complete_checkpoint(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tmp_path, tiny_model, tiny_data, max_steps=4, save_steps=2, eval_steps=2, learning_rate=1e-3)
    check(run_recipe("train_soft_infonce.py", config))  # "interrupted" after step 4: checkpoints 2 and 4
    last = tmp_path / "run" / "checkpoint-4"
    assert trainer_state(last)["global_step"] == 4
    # A save stopped half way (the trainer writes the weights first, trainer_state.json last): not resumed from.
    shutil.copytree(last, tmp_path / "run" / "checkpoint-5", ignore=shutil.ignore_patterns("model.safetensors"))
    # Read now: the resumed run's checkpoint rotation may remove checkpoint-4.
    saved_optimizer = torch.load(last / "optimizer.pt", map_location="cpu", weights_only=True)
    saved_scheduler = torch.load(last / "scheduler.pt", map_location="cpu", weights_only=True)

    from hf_softnce.training.run import train_retriever

    assert json.loads((last / "hf_softnce_config.json").read_text())["learning_rate"] == 1e-3
    # The folder's checkpoints are another run's for a run with another learning rate: refused, nothing trained.
    with pytest.raises(ValueError, match=r"^resume_from_checkpoint: .*checkpoint-4 was saved by a run with another "
                                         r"configuration \(learning_rate: 0\.001 there, 0\.0005 now\): resume with "
                                         r"that run's settings, or train into another output_dir\.$"):
        train_retriever(load_config(config, ["resume_from_checkpoint=last", "learning_rate=5e-4"]), progress=False)
    capture = CaptureResume()
    resumed = load_config(config, ["resume_from_checkpoint=last", "max_steps=6"])  # longer: may differ
    train_retriever(resumed, progress=False, callbacks=[capture])

    assert capture.start_step == 4 and capture.first_step == 5
    assert trainer_state(tmp_path / "run" / "checkpoint-6")["global_step"] == 6
    logged_steps = [entry["step"] for entry in trainer_state(tmp_path / "run" / "checkpoint-6")["log_history"]]
    assert logged_steps[0] == 1 and 6 in logged_steps  # the history of steps 1-4 was carried over

    assert saved_optimizer["state"], "the checkpoint's optimizer has moments"
    assert capture.optimizer_state["state"].keys() == saved_optimizer["state"].keys()
    for index, saved in saved_optimizer["state"].items():
        started = capture.optimizer_state["state"][index]
        assert float(started["step"]) == float(saved["step"]) == 4.0
        torch.testing.assert_close(started["exp_avg"], saved["exp_avg"], rtol=0, atol=0)
        torch.testing.assert_close(started["exp_avg_sq"], saved["exp_avg_sq"], rtol=0, atol=0)
    assert [g["lr"] for g in capture.optimizer_state["param_groups"]] == [g["lr"] for g in saved_optimizer["param_groups"]]

    assert capture.scheduler_state["last_epoch"] == saved_scheduler["last_epoch"] == 4
    assert capture.scheduler_state["_last_lr"] == saved_scheduler["_last_lr"]


# ----------------------------------------------------------------------------------------------- bad input


def test_unknown_config_key_names_the_close_one_or_lists_the_valid_keys(tmp_path, tiny_model, tiny_data):
    with pytest.raises(ValueError, match=r"^command line: Unknown config key 'lerning_rate'\. Did you mean "
                                         r"'learning_rate'\?$"):
        load_config(None, ["lerning_rate=1e-5"])

    config = tiny_config(tmp_path, tiny_model, tiny_data, bogus_key=1)
    result = run_recipe("train_soft_infonce.py", config)
    assert result.returncode == 2
    line = 1 + sorted(yaml.safe_load(config.read_text())).index("bogus_key")  # safe_dump sorts the keys
    assert f"{config}:{line}: Unknown config key 'bogus_key'." in result.stderr
    assert all(key in result.stderr for key in ("model", "learning_rate", "push_to_hub", "order_teacher"))
    assert not (tmp_path / "run").exists()

    good = tiny_config(tmp_path, tiny_model, tiny_data, name="good.yaml")
    result = run_recipe("train_ranker.py", good, "ranker_scael=30")
    assert result.returncode == 2
    assert "command line: Unknown config key 'ranker_scael'. Did you mean 'ranker_scale'?" in result.stderr

    result = run_recipe("train_ranker.py", good, "batch_size=0")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith("error: command line: config key 'batch_size' must be >= 1, got 0.")


def test_push_preflight_fails_without_a_token_before_training(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tmp_path, tiny_model, tiny_data)
    env = recipe_env(HF_HOME=str(tmp_path / "empty_hf_home"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
        env.pop(name, None)
    result = run_recipe("train_soft_infonce.py", config, "--push-to-hub", "someone/code-search", env=env)
    assert result.returncode != 0
    assert "HubAccessError: No Hugging Face token found" in result.stderr
    assert "hf auth login" in result.stderr and "HF_TOKEN" in result.stderr
    assert not (tmp_path / "run").exists()  # no data built, no checkpoint, no output folder


def test_cli_flags_are_config_keys():
    from hf_softnce.training.cli_args import parse_recipe_args

    config = parse_recipe_args(["batch_size=8", "--push-to-hub", "me/model", "bf16=true", "--resume-from-checkpoint"])
    assert isinstance(config, TrainConfig)
    assert (config.batch_size, config.push_to_hub, config.resume_from_checkpoint, config.bf16) == (8, "me/model", "last", True)
    assert parse_recipe_args(["--resume-from-checkpoint", "runs/x/checkpoint-2"]).resume_from_checkpoint == "runs/x/checkpoint-2"


@pytest.mark.parametrize("name", sorted(p.name for p in (RECIPES / "configs").glob("*.yaml")))
def test_shipped_configs_load(name):
    config = load_config(RECIPES / "configs" / name)
    if name.endswith("_csn.yaml"):
        assert config.bf16 and config.use_cpu is False and config.data.startswith("codesearchnet:")


# ------------------------------------------------------------------------------------------ the card of a recipe run

TINY_HUB_ID = "hf-softnce-test/tiny-bert"  # the tiny model, served offline from a prefilled Hub cache


@pytest.fixture(scope="module")
def cosqa_format_dir(tmp_path_factory, tiny_data) -> Path:
    """The tiny stdlib corpus written as CoSQA's published files: training pairs, dev-500 and test-500 over one
    codebase, so a run trains on "CoSQA" and is evaluated over a known number of codes."""
    from datasets import load_from_disk

    corpus = load_from_disk(tiny_data)
    root = tmp_path_factory.mktemp("cosqa_format")
    # As in CoSQA's published protocol the codebase holds the training codes too, so training queries can be held out.
    codebase = {code: i for i, code in enumerate(dict.fromkeys([*corpus["train"]["code"], *corpus["valid"]["code"],
                                                                 *corpus["test"]["code"]]))}
    (root / "code_idx_map.txt").write_text(json.dumps(codebase))

    def records(split, name, indexed):
        rows = [{"idx": f"cosqa-{name}-{i}", "doc": row["query"], "code": row["code"], "code_tokens": row["code"],
                 "docstring_tokens": "", "label": 1, **({"retrieval_idx": codebase[row["code"]]} if indexed else {})}
                for i, row in enumerate(corpus[split])]
        return json.dumps(rows)

    (root / "cosqa-train.json").write_text(records("train", "train", False))
    (root / "cosqa-retrieval-dev-500.json").write_text(records("valid", "dev", True))
    (root / "cosqa-retrieval-test-500.json").write_text(records("test", "test", True))
    return root


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, tiny_model) -> Path:
    """A Hugging Face cache holding the tiny model under a Hub id, as after a download: base_model is a Hub id."""
    cache = tmp_path_factory.mktemp("hub_cache")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{TINY_HUB_ID.replace('/', '--')}"
    shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return cache


@pytest.fixture(scope="module")
def cosqa_run(tmp_path_factory, tiny_model, tiny_data, cosqa_format_dir, hub_cache):
    """One recipe run, offline and without a token: CoSQA-format data, WiSE-FT, checkpoints kept."""
    tmp_path = tmp_path_factory.mktemp("cosqa_run")
    config = tiny_config(tmp_path, TINY_HUB_ID, tiny_data, data="cosqa", data_dir=str(cosqa_format_dir),
                         cosqa_dir=str(cosqa_format_dir), wise_ft_weight=0.5, save_steps=3)
    env = recipe_env(HF_HUB_CACHE=str(hub_cache), HF_HOME=str(tmp_path / "hf_home"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        env.pop(name, None)
    check(run_recipe("train_soft_infonce.py", config, env=env))
    return config, tmp_path / "run", env


def test_recipe_run_carries_a_true_card_with_the_saved_weights_numbers(cosqa_run, cosqa_format_dir, monkeypatch):
    from huggingface_hub import ModelCard
    from sentence_transformers import SentenceTransformer

    from hf_softnce.hub import STOCK_CARD_PLACEHOLDERS
    from hf_softnce.training.data import load_task_data
    from hf_softnce.training.run import evaluate_model

    config_path, run, env = cosqa_run
    card = ModelCard.load(run / "final" / "README.md")
    assert (run / "README.md").read_text() == (run / "final" / "README.md").read_text()  # `hf-softnce push RUN_DIR`
    assert card.data.base_model == TINY_HUB_ID
    assert card.data.datasets == ["CoIR-Retrieval/cosqa"]  # the training data, by its Hub id
    assert card.data.license == "apache-2.0" and card.data.language == ["en", "code"]
    for placeholder in STOCK_CARD_PLACEHOLDERS:
        assert placeholder not in card.content
    assert str(cosqa_format_dir) not in card.content and str(run) not in card.content  # no local path
    assert "Side by side" not in card.text and "# sentence-transformers model card" not in card.text
    assert "WiSE-FT applied" in card.text and "`SoftInfoNCELoss`, negatives weighted by `BM25Weighter`" in card.text
    published = yaml.safe_load((run / "final" / "training_config.yaml").read_text())
    assert "output_dir" not in published["training_args"] and published["wise_ft_weight"] == 0.5

    # Re-evaluate the saved weights: the card's numbers are exactly theirs, over the whole codebase.
    monkeypatch.setenv("HF_HUB_CACHE", env["HF_HUB_CACHE"])
    data = load_task_data(load_config(config_path), progress=False)
    codebase = len(json.loads((cosqa_format_dir / "code_idx_map.txt").read_text()))
    saved = evaluate_model(SentenceTransformer(str(run / "final"), device="cpu"), data)
    # data=cosqa: CoSQA train less its held-out queries to train on; those queries and the dev split, each over the
    # whole codebase, to evaluate on.
    sets = {"CoSQA train, held-out queries": "cosqa-heldout", "CoSQA dev-500": "cosqa-dev"}
    results = card.data.eval_results
    assert {r.metric_type for r in results} >= {"mrr@1000", "ndcg@10", "recall@1"}
    assert not [r for r in results if r.metric_type.startswith("cosine_")]
    seen = set()
    for result in results:
        key = sets[result.dataset_name.split(" (")[0]]
        seen.add(key)
        assert result.metric_value == saved[f"{key}_{result.metric_type}"], (key, result.metric_type)
        assert result.dataset_args["corpus_size"] == codebase
        assert result.dataset_name.endswith(f"over {codebase:,} codes)")
        assert result.metric_name.endswith(f"over {codebase:,} codes")
        assert result.dataset_type == "CoIR-Retrieval/cosqa"
    assert seen == set(sets.values())
    # The base model was evaluated too: its row stands beside the run's in the text, never in the model-index.
    assert "| base model (zero-shot) |" in card.text and "**fine-tuned (this model)**" in card.text


def test_push_of_a_recipe_output_folder_uploads_final_and_its_card_only(cosqa_run, monkeypatch, capsys):
    from huggingface_hub import CommitInfo, HfApi, RepoUrl, constants

    from hf_softnce.cli import main

    _, run, _ = cosqa_run
    assert list(run.glob("checkpoint-*/optimizer.pt"))  # pickled optimizer states sit in the run folder
    uploads = []

    def upload_folder(api, **kwargs):
        folder = Path(kwargs["folder_path"])
        uploads.append({**kwargs, "files": sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                                                   if p.is_file())})
        return CommitInfo(commit_url="https://huggingface.co/someone/tiny/commit/abc", commit_message="",
                          commit_description="", oid="abc")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "whoami", lambda api, *a, **k: {"name": "someone", "orgs": []})
    monkeypatch.setattr(HfApi, "repo_exists", lambda api, *a, **k: False)
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **k: RepoUrl(f"https://huggingface.co/{repo_id}"))
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)

    assert main(["push", str(run), "someone/tiny", "--token", "hf_" + "x" * 34]) == 0
    (upload,) = uploads
    assert Path(upload["folder_path"]) == run / "final"
    assert upload.get("allow_patterns") is None and upload.get("ignore_patterns") is None  # the folder, as is
    assert upload["files"] == [
        "1_Pooling/config.json", "README.md", "config.json", "config_sentence_transformers.json",
        "eval_results.json", "model.safetensors", "modules.json", "sentence_bert_config.json",
        "tokenizer.json", "tokenizer_config.json", "training_config.yaml",
    ]
    assert capsys.readouterr().out.strip() == "https://huggingface.co/someone/tiny/commit/abc"
