"""The training configuration: typed, range-checked keys, every SentenceTransformerTrainingArguments field passed
through, one-line errors naming file, line and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from transformers.trainer_utils import SchedulerType

from hf_softnce.training.cli_args import parse_recipe_args
from hf_softnce.training.config import ConfigError, TrainConfig, load_config
from hf_softnce.training.run import training_arguments

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "recipes" / "configs" / "default.yaml"
# A boolean trainer argument passed through by name: transformers 5 renamed gradient_checkpointing (and warns on it).
CHECKPOINTING = ("activation_checkpointing" if "activation_checkpointing" in
                 {f.name for f in dataclasses.fields(__import__("transformers").TrainingArguments)}
                 else "gradient_checkpointing")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bf16=maybe", "config key 'bf16' must be true or false, got 'maybe'."),
        ("fp16=1", "config key 'fp16' must be true or false, got 1."),
        ("batch_size=0", "config key 'batch_size' must be >= 1, got 0."),
        ("batch_size=2.7", "config key 'batch_size' must be an integer, got 2.7."),
        ("batch_size=true", "config key 'batch_size' must be an integer, got True."),
        ("max_steps=1.5", "config key 'max_steps' must be an integer, got 1.5."),
        ("max_steps=0", "config key 'max_steps' must be != 0, got 0."),
        ("learning_rate=-1", "config key 'learning_rate' must be > 0, got -1.0."),
        ("learning_rate=fast", "config key 'learning_rate' must be a finite number, got 'fast'."),
        ("seed=None", "config key 'seed' must be an integer, got 'None'."),
        ("seed=null", "config key 'seed' must be an integer, got None."),
        ("alpha=.nan", "config key 'alpha' must be a finite number or null, got nan."),
        ("beta=.inf", "config key 'beta' must be a finite number or null, got inf."),
        ("warmup_ratio=1.5", "config key 'warmup_ratio' must be < 1, got 1.5."),
        ("select_on=test", "config key 'select_on' must be one of ['valid', 'cosqa', 'auto', 'none'], got 'test'."),
        ("loss=mnrls", "config key 'loss' must be one of ['infonce', 'soft_infonce', 'order_infonce', 'mnrl', 'gist'], "
                       "got 'mnrls'."),
        ("gradient_accumulation_steps=0", "config key 'gradient_accumulation_steps' must be >= 1, got 0."),
        ("gradient_accumulation_steps=two", "config key 'gradient_accumulation_steps' must be int, got 'two'."),
        ("gradient_checkpointing=maybe", "config key 'gradient_checkpointing' must be bool | None, got 'maybe'."),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config(DEFAULT, [override])
    assert str(caught.value) == f"command line: {message}"
    assert isinstance(caught.value, ValueError)


def test_training_argument_errors_come_from_the_arguments_class_in_one_line():
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["lr_scheduler_type=bogus"])
    text = str(caught.value)
    assert text.startswith("command line: config key 'lr_scheduler_type' is invalid: ValueError: bogus is not a valid "
                           "SchedulerType, please select one of ['linear', 'cosine'")
    assert "\n" not in text


def test_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: default\nbatch_size: 32\nlerning_rate: 1.0e-5\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:3: Unknown config key 'lerning_rate'. Did you mean 'learning_rate'?"
    path.write_text("model: default\nzzz: 1\n")  # nothing close: every valid key, in one line
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:2: Unknown config key 'zzz'. Valid keys: hf_softnce's (model,")
    assert str(caught.value).endswith("and any SentenceTransformerTrainingArguments field.")

    path.write_text("model: default\nseed: None\nbf16: false\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: config key 'seed' must be an integer, got 'None'\.$"):
        load_config(path)
    # The same bad value overridden on the command line is no error; a bad override names the command line.
    assert load_config(path, ["seed=7"]).seed == 7
    with pytest.raises(ConfigError, match=r"^command line: config key 'bf16' must be true or false, got 'yes please'\.$"):
        load_config(path, ["seed=7", "bf16=yes please"])

    path.write_text("model: default\nbatch_size: 8\nbatch_size: 16\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: config key 'batch_size' is repeated \(first on line 2\)\.$"):
        load_config(path)


def test_malformed_yaml_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: default\nsources: [stdlib\nbatch_size: 8\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}:3:11: invalid YAML: while parsing a flow sequence expected ',' or ']', but got ':'."
    )
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=rf"^{path}: a config must be a mapping of keys to values, got list\.$"):
        load_config(path)
    for key, kind in (("1", "int"), ("null", "null"), ("yes", "bool")):  # keys YAML reads as other types
        path.write_text(f"model: default\n{key}: 2\n")
        with pytest.raises(ConfigError, match=rf"^{path}:2: config key '{key}' is not a name \(YAML reads it as "
                                              rf"{kind}\)"):
            load_config(path)
    path.write_bytes(b"model: default\nbatch_size: 8 \xff\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: not UTF-8 text \(byte 0xff\); save the config as UTF-8\.$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^command line: config key 'sources': invalid YAML value '\[a' "):
        load_config(None, ["sources=[a"])
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'missing.yaml'}: cannot read the config"):
        load_config(tmp_path / "missing.yaml")


def test_recipe_command_line_exits_2_with_the_one_line_message(capsys):
    with pytest.raises(SystemExit) as caught:
        parse_recipe_args(["--config", str(DEFAULT), "batch_size=0"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: command line: config key 'batch_size' must be >= 1, got 0.")


def test_recipes_take_hf_argument_parser_spellings_of_any_key():
    config = parse_recipe_args([
        "--config", str(DEFAULT), "--gradient_accumulation_steps", "4", "--lr-scheduler-type=cosine",
        f"--{CHECKPOINTING}", "--push-to-hub", "me/model", "batch_size=8", "--learning_rate", "1e-5",
    ])
    assert config.training_args == {"gradient_accumulation_steps": 4, "lr_scheduler_type": "cosine",
                                    CHECKPOINTING: True}
    assert (config.push_to_hub, config.batch_size, config.learning_rate) == ("me/model", 8, 1e-5)


def test_training_argument_fields_pass_through_to_the_trainer_arguments(tmp_path):
    config = load_config(DEFAULT, [
        "gradient_accumulation_steps=4", "lr_scheduler_type=cosine", "report_to=none", f"{CHECKPOINTING}=true",
        "hub_model_id=me/code-search", f"output_dir={tmp_path}", "use_cpu=true",
    ])
    assert config.training_args == {
        "gradient_accumulation_steps": 4, "lr_scheduler_type": "cosine", "report_to": "none",
        CHECKPOINTING: True, "hub_model_id": "me/code-search",
    }
    args = training_arguments(config, selecting=False, metric=None)
    assert args.gradient_accumulation_steps == 4
    assert args.lr_scheduler_type == SchedulerType.COSINE
    assert args.report_to == []  # "none" is transformers' spelling of no integration
    assert getattr(args, CHECKPOINTING) is True
    assert args.hub_model_id == "me/code-search"
    assert args.per_device_train_batch_size == 32  # hf_softnce's own keys still apply
    # to_dict is flat, so a saved config.json reads back as the same config
    saved = config.to_dict()
    assert saved["gradient_accumulation_steps"] == 4 and "training_args" not in saved
    assert TrainConfig.from_dict(saved) == config
    # transformers' spelling of a push: push_to_hub=true with the repo in hub_model_id
    assert load_config(None, ["push_to_hub=true", "hub_model_id=me/model"]).push_to_hub == "me/model"
    assert load_config(None, ["push_to_hub=false"]).push_to_hub is None
    with pytest.raises(ConfigError, match=r"^command line: config key 'push_to_hub' is true but no hub_model_id is set"):
        load_config(None, ["push_to_hub=true"])


def test_save_steps_alone_works_when_choosing_the_best_checkpoint(tmp_path):
    config = load_config(DEFAULT, ["save_steps=25", f"output_dir={tmp_path}", "use_cpu=true"])
    args = training_arguments(config, selecting=True, metric="cosqa_mrr@1000")
    assert (args.save_strategy, args.save_steps) == ("steps", 25)
    # The best checkpoint can only be chosen among evaluated ones: evaluation follows the saves.
    assert (args.eval_strategy, args.eval_steps, args.load_best_model_at_end) == ("steps", 25, True)

    config = load_config(DEFAULT, ["eval_steps=10", f"output_dir={tmp_path}", "use_cpu=true"])
    args = training_arguments(config, selecting=True, metric="cosqa_mrr@1000")
    assert (args.eval_steps, args.save_steps) == (10, 10)

    config = load_config(DEFAULT, ["save_steps=25", f"output_dir={tmp_path}", "use_cpu=true"])
    args = training_arguments(config, selecting=False, metric=None)
    assert (args.eval_strategy, args.save_strategy, args.save_steps) == ("no", "steps", 25)

    config = load_config(DEFAULT, ["save_steps=25", "eval_steps=10", f"output_dir={tmp_path}", "use_cpu=true"])
    with pytest.raises(ConfigError, match=r"^training arguments: --load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, but found 25, which is not a round multiple of 10\.$"):
        training_arguments(config, selecting=True, metric="cosqa_mrr@1000")


def test_warmup_ratio_keeps_its_meaning(tmp_path):
    config = load_config(DEFAULT, ["warmup_ratio=0.1", f"output_dir={tmp_path}", "use_cpu=true"])
    args = training_arguments(config, selecting=False, metric=None)
    assert args.get_warmup_steps(200) == 20 and args.get_warmup_steps(1000) == 100
    config = load_config(DEFAULT, ["warmup_ratio=0.0", f"output_dir={tmp_path}", "use_cpu=true"])
    assert training_arguments(config, selecting=False, metric=None).get_warmup_steps(200) == 0
    # transformers' own warmup_steps (a count) passes through and wins
    config = load_config(DEFAULT, ["warmup_steps=7", f"output_dir={tmp_path}", "use_cpu=true"])
    assert training_arguments(config, selecting=False, metric=None).get_warmup_steps(200) == 7
    # A ratio of 1 would read as "1 step" to transformers v5: refused rather than silently reinterpreted.
    with pytest.raises(ConfigError, match=r"^command line: config key 'warmup_ratio' must be < 1, got 1\.0\.$"):
        load_config(DEFAULT, ["warmup_ratio=1"])


def test_main_job_style_construction_and_replace_are_checked():
    base = TrainConfig.from_dict(dict(max_train_pairs=768, max_steps=24, batch_size=32, max_seq_length=128,
                                      learning_rate="2e-5", cosqa_corpus_size=2000, select_on="none",
                                      wise_ft_weight=0.5))
    assert base.learning_rate == 2e-5  # YAML 1.1 reads 2e-5 as a string; the key still gets its number
    run = dataclasses.replace(base, seed=43, output_dir="runs/x", loss="infonce", weighter="none")
    assert (run.seed, run.loss, run.max_steps) == (43, "infonce", 24)
    with pytest.raises(ConfigError, match=r"^config key 'weighter' must be one of \['none', 'bm25', "):
        dataclasses.replace(base, weighter="bm52")
    with pytest.raises(ConfigError, match=r"^Unknown config key 'max_step'\. Did you mean 'max_steps'\?"):
        TrainConfig.from_dict({"max_step": 3})
    # None spelled as a string is null for keys that allow null
    assert TrainConfig.from_dict({"max_train_pairs": "None", "alpha": "null"}).max_train_pairs is None


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "recipes" / "configs").glob("*.yaml")))
def test_shipped_configs_are_valid(name):
    config = load_config(ROOT / "recipes" / "configs" / name)
    assert config.to_dict() == TrainConfig.from_dict(config.to_dict()).to_dict()


def test_the_shipped_training_argument_names_are_the_installed_class_fields():
    """The key check reads this list instead of importing sentence-transformers; it must name the same fields."""
    from importlib import metadata

    from sentence_transformers import SentenceTransformerTrainingArguments

    from hf_softnce.training import argument_names

    installed = {name: metadata.version(name) for name in argument_names.VERSIONS}
    if installed != argument_names.VERSIONS:
        pytest.skip(f"other versions installed ({installed}): the class itself is asked, slower but exact")
    fields = {f.name for f in dataclasses.fields(SentenceTransformerTrainingArguments) if f.init}
    assert argument_names.FIELDS == fields


def test_a_config_key_typo_answers_before_the_heavy_imports(tmp_path):
    """`hf-softnce train` with a misspelt key: one line with the close match, in seconds, torch never imported."""
    import subprocess
    import sys
    import time

    code = ("import sys; from hf_softnce.cli import main; status = main(['train', 'learning_rat=1e-5']); "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'imported'; "
            "sys.exit(status)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    assert "Unknown config key 'learning_rat'. Did you mean 'learning_rate'?" in done.stderr
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_the_card_lists_the_settings_that_shaped_the_weights(tmp_path):
    """Logging, Hub and device options never reach the card's training arguments, pass-through keys included; the
    checkpoint and evaluation keys do where the best checkpoint was kept, and not where none was chosen."""
    from hf_softnce.training.publish import card_training_args

    overrides = ["report_to=none", "hub_model_id=me/code-search", "hub_private=true", "logging_steps=5",
                 "eval_steps=7", "save_steps=7", "max_eval_queries=50", f"output_dir={tmp_path}", "use_cpu=true"]
    chosen = card_training_args(load_config(DEFAULT, [*overrides, "select_on=valid"]), {})
    assert {"eval_steps": 7, "save_steps": 7, "max_eval_queries": 50, "select_on": "valid"}.items() <= chosen.items()
    last = card_training_args(load_config(DEFAULT, [*overrides, "select_on=none"]), {})
    for card in (chosen, last):
        assert not {"report_to", "hub_model_id", "hub_private", "logging_steps", "output_dir", "use_cpu"} & set(card)
        assert None not in card.values() and card["learning_rate"] == chosen["learning_rate"]
    assert not {"eval_steps", "save_steps", "max_eval_queries", "select_on"} & set(last)
