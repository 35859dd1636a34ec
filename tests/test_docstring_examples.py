"""Every loss docstring's Example runs as printed (the packaged model swapped for a tiny local one)."""

from __future__ import annotations

import inspect
import re
import textwrap

import pytest
from conftest import tiny_model_dir

import hf_softnce.losses as losses

# NegativeAwareLoss is the shared base, not a loss one trains with.
LOSSES = [getattr(losses, name) for name in losses.__all__ if name.endswith("Loss") and name != "NegativeAwareLoss"]


def docstring_example(cls) -> str:
    """The literal block under ``Example:`` in the constructor's docstring, dedented."""
    doc = inspect.getdoc(cls.__init__) or ""
    match = re.search(r"^Example:\n\s*::\n\n(.*?)(?=^\S|\Z)", doc, flags=re.MULTILINE | re.DOTALL)
    assert match, f"{cls.__name__}'s docstring has no Example block"
    return textwrap.dedent(match.group(1))


def test_every_loss_documents_recommendations_relations_and_an_example():
    assert {cls.__name__ for cls in LOSSES} >= {"SoftInfoNCELoss", "CachedSoftInfoNCELoss", "OrderInfoNCELoss",
                                                 "CachedOrderInfoNCELoss", "R2PSRankerLoss"}
    for cls in LOSSES:
        doc = inspect.getdoc(cls.__init__)
        assert "Relations:" in doc and "Example:" in doc, cls.__name__
        assert "Dataset.from_dict(" in docstring_example(cls), f"{cls.__name__}: the example builds its own data"
    for cls in (losses.SoftInfoNCELoss, losses.OrderInfoNCELoss, losses.R2PSRankerLoss):
        assert "Recommendations:" in inspect.getdoc(cls.__init__), cls.__name__


@pytest.mark.parametrize("cls", LOSSES, ids=lambda cls: cls.__name__)
def test_loss_docstring_example_runs(cls, tmp_path, monkeypatch):
    code = docstring_example(cls)
    assert "default_model_path()" in code, "the example names the packaged model, so it runs offline"
    code = code.replace("default_model_path()", repr(tiny_model_dir()))
    monkeypatch.chdir(tmp_path)  # the trainer writes under the working directory
    namespace: dict = {}
    exec(compile(code, f"{cls.__name__} docstring", "exec"), namespace)
    trainer = namespace["trainer"]
    assert type(trainer.loss) is cls and trainer.state.global_step > 0
