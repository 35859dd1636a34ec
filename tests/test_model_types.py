"""Each piece takes the right kind of model, checked where it is built, with one line saying what to pass.

Unchecked, they would construct silently and fail later: `'str' object is not callable`, an `input_ids` message that
does not say "use a bi-encoder", or an AttributeError deep inside the miner, the evaluator or the cascade.
"""

from __future__ import annotations

import pytest
from conftest import build_tiny_model, tiny_model_dir
from sentence_transformers.cross_encoder import CrossEncoder

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation import CodeSearchEvaluator
from hf_softnce.losses import CachedOrderInfoNCELoss, CachedSoftInfoNCELoss, OrderInfoNCELoss, SoftInfoNCELoss
from hf_softnce.mining import RankingHardNegativeMiner
from hf_softnce.retrieval import RetrieverRanker

LOSSES = [SoftInfoNCELoss, CachedSoftInfoNCELoss, OrderInfoNCELoss, CachedOrderInfoNCELoss]
RERANK_HINT = "a CrossEncoder scores (query, code) pairs and can only re-rank: RetrieverRanker(retriever, ranker)."


@pytest.fixture(scope="module")
def cross_encoder():
    return CrossEncoder(tiny_model_dir(seed=1), num_labels=1, device="cpu")


def message(error) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("loss_class", LOSSES)
def test_losses_take_a_sentence_transformer(loss_class, cross_encoder):
    name = loss_class.__name__
    with pytest.raises(TypeError) as error:
        loss_class(cross_encoder)
    assert message(error) == f"{name} needs a SentenceTransformer (a bi-encoder), got a CrossEncoder; {RERANK_HINT}"
    with pytest.raises(TypeError) as error:
        loss_class("runs/soft_infonce/final")
    assert message(error) == (f"{name} needs a SentenceTransformer (a bi-encoder), got the str "
                              "'runs/soft_infonce/final'; load it first: SentenceTransformer('runs/soft_infonce/final').")


def test_miner_takes_a_sentence_transformer(cross_encoder):
    with pytest.raises(TypeError) as error:
        RankingHardNegativeMiner(cross_encoder)
    assert message(error) == (
        f"RankingHardNegativeMiner needs a SentenceTransformer (a bi-encoder), got a CrossEncoder; {RERANK_HINT}")


def test_evaluator_takes_a_sentence_transformer(cross_encoder):
    evaluator = CodeSearchEvaluator(RetrievalSet({"q": "parse"}, {"c": "def parse(): pass"}, {"q": {"c"}}),
                                    write_csv=False)
    expected = f"CodeSearchEvaluator needs a SentenceTransformer (a bi-encoder), got a CrossEncoder; {RERANK_HINT}"
    for call in (evaluator, evaluator.rank):
        with pytest.raises(TypeError) as error:
            call(cross_encoder)
        assert message(error) == expected
    with pytest.raises(TypeError) as error:
        evaluator(None)
    assert message(error) == ("CodeSearchEvaluator needs a SentenceTransformer (a bi-encoder), got a NoneType; "
                              "e.g. SentenceTransformer('sentence-transformers/all-MiniLM-L6-v2').")


def test_cascade_takes_a_retriever_then_a_ranker(cross_encoder):
    retriever = build_tiny_model()
    with pytest.raises(TypeError) as error:
        RetrieverRanker(cross_encoder, retriever)
    assert message(error) == (
        "RetrieverRanker got a CrossEncoder as retriever and a SentenceTransformer as ranker: the arguments are "
        "swapped; write RetrieverRanker(retriever, ranker), the bi-encoder first.")
    with pytest.raises(TypeError) as error:
        RetrieverRanker(retriever, retriever)
    assert message(error) == ("RetrieverRanker's ranker needs a CrossEncoder (a ranker scoring (query, code) pairs), "
                              "got a SentenceTransformer; e.g. CrossEncoder(path, num_labels=1).")
    with pytest.raises(TypeError) as error:
        RetrieverRanker(retriever, "cross-encoder/ms-marco-MiniLM-L6-v2")
    assert message(error).endswith("got the str 'cross-encoder/ms-marco-MiniLM-L6-v2'; load it first: "
                                   "CrossEncoder('cross-encoder/ms-marco-MiniLM-L6-v2').")
    assert RetrieverRanker(retriever, cross_encoder).ranker is cross_encoder
