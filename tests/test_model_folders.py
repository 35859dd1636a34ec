"""Saved model folders are checked when loaded by path: an incomplete SentenceTransformer folder is one line naming
the missing file, in the CLI, the training code's loader and the weighters (sentence-transformers would load another
model in silence: without modules.json the Dense layer is dropped, without tokenizer files every word is [UNK])."""

from __future__ import annotations

import shutil

import pytest
from conftest import build_tiny_model

from hf_softnce.cli import main
from hf_softnce.model_checks import IncompleteModelFolder, check_model_folder
from hf_softnce.training.models import load_model
from hf_softnce.weighting import EmbeddingWeighter, TrainedModelWeighter


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from sentence_transformers.base.modules import Dense

    model = build_tiny_model()
    model.append(Dense(32, 8))
    folder = tmp_path_factory.mktemp("model") / "saved"
    model.save(str(folder))
    return folder


def _damaged(saved_model, tmp_path, *missing):
    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    for name in missing:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return folder


CASES = {
    "modules.json": ("modules.json", "has config_sentence_transformers.json but no modules.json"),
    "tokenizer": ("tokenizer.json", "is missing its Transformer module's tokenizer files (none of tokenizer.json, vocab.txt"),
    "weights": ("model.safetensors", "is missing its Transformer module's weights (none of model.safetensors"),
    "dense folder": ("2_Dense", "is missing 2_Dense/, the folder of its Dense module."),
    "dense weights": ("2_Dense/model.safetensors", "is missing its Dense module's weights (none of 2_Dense/model.safetensors"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_incomplete_folders_are_refused_by_every_loader(saved_model, tmp_path, case):
    missing, message = CASES[case]
    folder = _damaged(saved_model, tmp_path, missing)
    expected = f"model folder {str(folder)!r} {message}"
    for load in (check_model_folder, load_model, TrainedModelWeighter, EmbeddingWeighter):
        with pytest.raises(IncompleteModelFolder) as error:
            load(str(folder))
        assert str(error.value).startswith(expected), load


@pytest.mark.parametrize("case", ["modules.json", "tokenizer"])
def test_evaluate_refuses_an_incomplete_folder_in_one_line_before_loading(saved_model, tmp_path, capsys, case):
    missing, message = CASES[case]
    folder = _damaged(saved_model, tmp_path, missing)
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "sort a list", "code": "def s(x):\\n    return sorted(x)"}\n')
    assert main(["evaluate", str(folder), "--data", str(data), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"hf-softnce: error: MODEL: model folder {str(folder)!r} {message}")
    assert captured.err.count("\n") == 1 and captured.out == ""


def test_a_complete_folder_and_a_plain_transformers_folder_load(saved_model):
    from conftest import tiny_model_dir

    check_model_folder(saved_model)
    check_model_folder(tiny_model_dir())  # no sentence-transformers files: a transformers folder, complete
    assert load_model(str(saved_model)).get_embedding_dimension() == 8


def test_a_plain_transformers_folder_without_weights_is_one_line(tmp_path, capsys):
    """A transformers folder (config.json, no sentence-transformers files) without weights is refused before any
    model loads; its tokenizer files, which vary by model family (DeBERTa's spm.model, none for ByT5), are left to
    the loader."""
    from conftest import tiny_model_dir

    folder = tmp_path / "plain"
    shutil.copytree(tiny_model_dir(), folder)
    (folder / "tokenizer.json").rename(folder / "spm.model")  # another family's tokenizer file: not refused here
    check_model_folder(folder)
    (folder / "model.safetensors").unlink()
    expected = f"model folder {str(folder)!r} has config.json but no weights (none of model.safetensors"
    with pytest.raises(IncompleteModelFolder) as error:
        check_model_folder(folder)
    assert str(error.value).startswith(expected)
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "sort a list", "code": "def s(x):\\n    return sorted(x)"}\n')
    assert main(["evaluate", str(folder), "--data", str(data), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hf-softnce: error: MODEL: {expected}") and err.count("\n") == 1


def test_the_packaged_default_model_passes_although_its_normalize_module_has_no_folder():
    """all-MiniLM-L6-v2 as sentence-transformers ships it lists 2_Normalize in modules.json without the folder (a
    module with no weights loads from its defaults): that is complete, never an error."""
    import os

    from hf_softnce.defaults import default_model_path
    from hf_softnce.model_checks import check_model_folder

    path = default_model_path()
    assert not os.path.isdir(os.path.join(path, "2_Normalize"))
    check_model_folder(path)
