"""R2PS ranker loss (exactness, training in CrossEncoderTrainer) and the retriever->ranker cascade."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import build_tiny_model, tiny_model_dir
from datasets import Dataset
from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
from torch import nn

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation import choose_cascade_setting, evaluate_cascade
from hf_softnce.losses import R2PSRankerLoss
from hf_softnce.retrieval import RetrieverRanker
from hf_softnce.training.ranker import r2ps_ranker

QUERIES = [
    "read a json file",
    "sort a list in reverse",
    "download a web page",
    "compute a md5 hash",
    "reverse a string",
    "count words in text",
]
GOLD = [
    "def load(path):\n    with open(path) as f:\n        return json.load(f)",
    "def rsort(items):\n    return sorted(items, reverse=True)",
    "def fetch(url):\n    return requests.get(url).text",
    "def digest(data):\n    return hashlib.md5(data).hexdigest()",
    "def flip(s):\n    return s[::-1]",
    "def wc(text):\n    return len(text.split())",
]
DISTRACTORS = [
    "def add(a, b):\n    return a + b",
    "def mkdir(path):\n    os.makedirs(path, exist_ok=True)",
    "def now():\n    return time.time()",
    "def first(items):\n    return items[0]",
]
CORPUS = {f"c{i}": code for i, code in enumerate(GOLD + DISTRACTORS)}
RETRIEVAL_SET = RetrievalSet(
    queries={f"q{i}": q for i, q in enumerate(QUERIES)},
    corpus=CORPUS,
    relevant={f"q{i}": {f"c{i}"} for i in range(len(QUERIES))},
    name="toy",
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The CI box is shared: one intra-op thread is ~15x faster than oversubscribed spinning threads here.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_ranker(seed: int = 0) -> CrossEncoder:
    """A real BERT cross-encoder with random weights; no dropout, so a few full-batch steps fit the toy set."""
    path = tiny_model_dir(hidden=64)
    torch.manual_seed(seed)  # the classifier head is initialised on load
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    return CrossEncoder(path, num_labels=1, device="cpu", config_kwargs=no_dropout)


def ranker_dataset() -> Dataset:
    """(query, code, negative_1..9): every other code of the corpus is a negative of each query."""
    codes = list(CORPUS.values())
    rows = {"query": QUERIES, "code": GOLD}
    negatives = [[code for code in codes if code != gold] for gold in GOLD]
    for j in range(len(codes) - 1):
        rows[f"negative_{j + 1}"] = [row[j] for row in negatives]
    return Dataset.from_dict(rows)


def training_args(tmp_path, **overrides) -> CrossEncoderTrainingArguments:
    settings = dict(
        output_dir=str(tmp_path),
        num_train_epochs=60,
        per_device_train_batch_size=6,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    settings.update(overrides)
    return CrossEncoderTrainingArguments(**settings)


@pytest.fixture(scope="module")
def trained_ranker(tmp_path_factory):
    """A tiny CrossEncoder trained with R2PSRankerLoss in a real CrossEncoderTrainer run."""
    ranker = tiny_ranker()
    trainer = CrossEncoderTrainer(
        model=ranker,
        args=training_args(tmp_path_factory.mktemp("ranker")),
        train_dataset=ranker_dataset(),
        loss=R2PSRankerLoss(ranker, scale=20.0),
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    ranker.model.eval()
    return ranker, losses


@pytest.fixture(scope="module")
def retriever():
    return build_tiny_model(seed=3)


def raw_logits(ranker: CrossEncoder, pairs) -> torch.Tensor:
    return torch.as_tensor(ranker.predict(pairs, activation_fn=nn.Identity(), show_progress_bar=False))


# ---------------------------------------------------------------- the loss


def test_r2ps_loss_is_softmax_cross_entropy_over_positive_and_mined_negatives():
    ranker = tiny_ranker()
    ranker.model.eval()  # no dropout: the loss and the re-computation see the same logits
    data = ranker_dataset().select(range(3)).select_columns(["query", "code", "negative_1", "negative_2", "negative_3"])
    columns = [data[name] for name in data.column_names]
    temperature = 30.0
    loss = R2PSRankerLoss(ranker, scale=temperature)
    with torch.no_grad():
        value = loss(columns, None).item()
        # Direct formula: scores = tanh(logit) * temperature over [positive, negatives]; target index 0.
        logits = torch.stack(
            [raw_logits(ranker, list(zip(columns[0], candidates))) for candidates in columns[1:]], dim=1
        )
        scores = torch.tanh(logits) * temperature
        expected = (torch.logsumexp(scores, dim=1) - scores[:, 0]).mean().item()
        assert value == pytest.approx(expected, rel=1e-5)

        # The stock CrossEncoder MNRL with the same activation and scale is the same loss for one row, where
        # no in-batch negatives exist; over several rows it also scores other rows' codes, which R2PS must not.
        stock = MultipleNegativesRankingLoss(ranker, num_negatives=None, scale=temperature, activation_fn=nn.Tanh())
        for row in range(3):
            single = [[column[row]] for column in columns]
            assert loss(single, None).item() == pytest.approx(stock(single, None).item(), rel=1e-5)
        assert stock(columns, None).item() != pytest.approx(value, rel=1e-3)


def test_r2ps_loss_config_citation_and_bad_input():
    ranker = tiny_ranker()
    loss = R2PSRankerLoss(ranker, scale=25.0)
    assert loss.get_config_dict() == {"scale": 25.0, "activation_fn": "torch.nn.modules.activation.Tanh"}
    assert "2305.04508" in loss.citation
    with pytest.raises(ValueError, match="scale"):
        R2PSRankerLoss(ranker, scale=0.0)
    # R2PS's name for the factor stays as a deprecated alias of sentence-transformers' `scale`.
    with pytest.warns(DeprecationWarning, match="scale"):
        old_name = R2PSRankerLoss(ranker, temperature=30.0)
    assert old_name.scale == old_name.temperature == 30.0 and old_name.get_config_dict()["scale"] == 30.0
    with pytest.raises(ValueError, match="negative_1"):
        loss([["a query"], ["its code"]], None)


def test_r2ps_ranker_loss_falls_in_cross_encoder_trainer(trained_ranker):
    ranker, losses = trained_ranker
    assert len(losses) == 60
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert first == pytest.approx(torch.log(torch.tensor(10.0)).item(), abs=0.2)  # uniform over 10 candidates
    assert last < 0.3 * first
    # The trained ranker puts each query's gold code first among all ten codes.
    codes = list(CORPUS.values())
    scores = torch.as_tensor(ranker.predict([(q, c) for q in QUERIES for c in codes])).reshape(len(QUERIES), -1)
    assert scores.argmax(dim=1).tolist() == list(range(len(QUERIES)))


# ---------------------------------------------------------------- the cascade


def test_cascade_beats_the_retriever_when_the_ranker_is_right(trained_ranker, retriever, tmp_path):
    ranker, _ = trained_ranker
    cascade = RetrieverRanker(retriever, ranker, top_k=10, cache=tmp_path)
    report = evaluate_cascade(cascade, RETRIEVAL_SET)
    assert report["retriever"]["mrr@1000"] < 0.9  # the random tiny retriever is wrong...
    assert report["cascade"]["mrr@1000"] == 1.0  # ...the trained ranker is right on every query
    assert report["cascade"]["recall@1"] == 1.0 > report["retriever"]["recall@1"]
    assert report["cascade"]["ndcg@10"] == 1.0
    assert set(report["retriever"]) == {"mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10"}
    latency = report["latency_ms_per_query"]
    assert latency["retriever"] > 0 and latency["ranker"] > 0
    assert latency["cascade"] == pytest.approx(latency["retriever"] + latency["ranker"])

    # search() gives the same ranking as the evaluation and records its own latencies.
    results = cascade.search(QUERIES, CORPUS)
    assert [ranking[0][0] for ranking in results] == [f"c{i}" for i in range(len(QUERIES))]
    assert set(cascade.last_latency_ms) == {"retriever", "ranker"}


def test_combine_replace_and_add_score_as_specified(trained_ranker, retriever, tmp_path):
    ranker, _ = trained_ranker
    query = QUERIES[2]
    retrieved = RetrieverRanker(retriever, ranker, top_k=10, cache=tmp_path).retrieve([query], CORPUS, 10)[0]
    retriever_score = dict(retrieved)
    # R2PS adds tanh(logit) (model.py Unixcoder_RR.forward; run_unixcoder_rr_hard.py evaluate, CoSQA branch).
    logits = raw_logits(ranker, [(query, c) for c in CORPUS.values()])
    ranker_score = dict(zip(CORPUS, torch.tanh(logits).tolist()))

    replaced = RetrieverRanker(retriever, ranker, top_k=10, combine="replace", cache=tmp_path).search(query, CORPUS)[0]
    added = RetrieverRanker(retriever, ranker, top_k=10, combine="add", cache=tmp_path).search(query, CORPUS)[0]
    for cid, score in replaced:
        assert score == pytest.approx(ranker_score[cid], abs=1e-5)
    for cid, score in added:
        assert score == pytest.approx(retriever_score[cid] + ranker_score[cid], abs=1e-5)
    assert [s for _, s in replaced] == sorted((s for _, s in replaced), reverse=True)
    assert [s for _, s in added] == sorted((s for _, s in added), reverse=True)

    # A ranker score shrunk far below the retriever's: "add" keeps the retriever's order, "replace" does not.
    shrink = lambda logits: logits * 1e-6  # noqa: E731
    add_small = RetrieverRanker(retriever, ranker, top_k=10, combine="add", activation_fn=shrink, cache=tmp_path)
    replace_small = RetrieverRanker(
        retriever, ranker, top_k=10, combine="replace", activation_fn=shrink, cache=tmp_path
    )
    retriever_order = [cid for cid, _ in retrieved]
    assert [cid for cid, _ in add_small.search(query, CORPUS)[0]] == retriever_order
    assert [cid for cid, _ in replace_small.search(query, CORPUS)[0]][0] == "c2" != retriever_order[0]


class FixedLogitRanker:
    """CrossEncoder.predict's contract on fixed logits: ``activation_fn`` if given, else its own (sigmoid)."""

    activation_fn = nn.Sigmoid()

    def __init__(self, logits: dict[str, float]):
        self.logits = logits

    def predict(self, pairs, batch_size=32, activation_fn=None, show_progress_bar=False):
        logits = torch.tensor([self.logits[code] for _, code in pairs])
        return (activation_fn or self.activation_fn)(logits).numpy()


def test_add_is_cosine_plus_tanh_logit_as_released(retriever):
    """cos .60 / logit 0 against cos .30 / logit .5: tanh gives .60 < .30 + tanh(.5) = .762, so "b" wins; the
    CrossEncoder's sigmoid would give 1.10 > .922 and keep "a" first."""
    corpus = {"a": "code a", "b": "code b"}
    candidates = [[("a", 0.60), ("b", 0.30)]]
    ranker = FixedLogitRanker({"code a": 0.0, "code b": 0.5})
    added = RetrieverRanker(retriever, ranker, top_k=2, combine="add").rerank(["q"], corpus, candidates)[0]
    assert [cid for cid, _ in added] == ["b", "a"]
    assert dict(added) == pytest.approx({"a": 0.60 + math.tanh(0.0), "b": 0.30 + math.tanh(0.5)}, abs=1e-6)
    # The CrossEncoder's own activation only when asked for.
    own = RetrieverRanker(retriever, ranker, top_k=2, combine="add", activation_fn=ranker.activation_fn)
    assert [cid for cid, _ in own.rerank(["q"], corpus, candidates)[0]] == ["a", "b"]
    replaced = RetrieverRanker(retriever, ranker, top_k=2).rerank(["q"], corpus, candidates)[0]
    assert dict(replaced) == pytest.approx({"a": 0.0, "b": math.tanh(0.5)}, abs=1e-6)


def test_ranker_weight_scales_the_ranker_score_under_add(retriever):
    """cos .60 / logit 0 against cos .30 / logit .5: weight 0.5 gives .60 > .30 + .5 tanh(.5) = .531, so "a" stays
    first where weight 1 put "b" first (the test above); weight 2 gives .30 + 2 tanh(.5) = 1.224."""
    corpus = {"a": "code a", "b": "code b"}
    candidates = [[("a", 0.60), ("b", 0.30)]]
    ranker = FixedLogitRanker({"code a": 0.0, "code b": 0.5})
    half = RetrieverRanker(retriever, ranker, top_k=2, combine="add", ranker_weight=0.5)
    kept = half.rerank(["q"], corpus, candidates)[0]
    assert [cid for cid, _ in kept] == ["a", "b"]
    assert dict(kept) == pytest.approx({"a": 0.60, "b": 0.30 + 0.5 * math.tanh(0.5)})
    double = RetrieverRanker(retriever, ranker, top_k=2, combine="add", ranker_weight=2.0)
    doubled = double.rerank(["q"], corpus, candidates)[0]
    assert [cid for cid, _ in doubled] == ["b", "a"]
    assert dict(doubled) == pytest.approx({"a": 0.60, "b": 0.30 + 2 * math.tanh(0.5)})
    # "replace" ignores the weight: the ranker's score is the score.
    replaced = RetrieverRanker(retriever, ranker, top_k=2, ranker_weight=0.5).rerank(["q"], corpus, candidates)[0]
    assert dict(replaced) == pytest.approx({"a": 0.0, "b": math.tanh(0.5)}, abs=1e-6)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="ranker_weight must be > 0"):
            RetrieverRanker(retriever, ranker, combine="add", ranker_weight=bad)


def test_trained_ranker_is_saved_with_the_tanh_it_was_trained_with(trained_ranker, tmp_path):
    ranker, _ = trained_ranker
    pairs = [(q, c) for q in QUERIES[:2] for c in list(CORPUS.values())[:3]]
    ranker.save(str(tmp_path / "ranker"))
    loaded = CrossEncoder(str(tmp_path / "ranker"), device="cpu")
    assert isinstance(loaded.activation_fn, nn.Tanh)
    expected = torch.tanh(raw_logits(ranker, pairs))
    torch.testing.assert_close(torch.as_tensor(loaded.predict(pairs)), expected, atol=1e-6, rtol=0)
    untrained = tiny_ranker()
    assert isinstance(untrained.activation_fn, nn.Sigmoid)  # the stock default the loss replaces
    R2PSRankerLoss(untrained, activation_fn=None)
    assert isinstance(untrained.activation_fn, nn.Identity)


def test_released_head_is_mean_pool_dense_gelu_layernorm_linear(tmp_path):
    """R2PS model.py: Unixcoder_RR.forward mean-pools the non-padding token states, then RobertaLMHead
    (dense -> gelu -> layer_norm -> decoder) gives one logit, and tanh of it is the score."""
    torch.manual_seed(0)
    ranker = r2ps_ranker(tiny_model_dir(hidden=64), head="released", device="cpu")
    R2PSRankerLoss(ranker)
    pairs = [("read a json file", GOLD[0]), ("reverse a string", GOLD[4]), ("md5", DISTRACTORS[0])]
    encoder, _, dense, norm, decoder = list(ranker)
    with torch.no_grad():
        features = ranker.preprocess(pairs)
        hidden = encoder.model(input_ids=features["input_ids"], attention_mask=features["attention_mask"],
                               token_type_ids=features["token_type_ids"]).last_hidden_state
        mask = features["attention_mask"][:, :, None].float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        x = torch.nn.functional.gelu(pooled @ dense.linear.weight.T + dense.linear.bias)
        x = torch.nn.functional.layer_norm(x, (64,), norm.norm.weight, norm.norm.bias, norm.norm.eps)
        expected = torch.tanh(x @ decoder.linear.weight.T + decoder.linear.bias).squeeze(1)
    torch.testing.assert_close(torch.as_tensor(ranker.predict(pairs)), expected, atol=1e-5, rtol=0)
    ranker.save(str(tmp_path / "released"))
    loaded = CrossEncoder(str(tmp_path / "released"), device="cpu")
    torch.testing.assert_close(torch.as_tensor(loaded.predict(pairs)), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="head must be 'stock' or 'released'"):
        r2ps_ranker(tiny_model_dir(hidden=64), head="roberta")


def test_candidates_beyond_top_k_keep_the_retriever_order(trained_ranker, retriever, tmp_path):
    ranker, _ = trained_ranker
    cascade = RetrieverRanker(retriever, ranker, top_k=3, cache=tmp_path)
    retrieved = cascade.retrieve(QUERIES, CORPUS, 10)
    results = cascade.search(QUERIES, CORPUS, top_k=10)
    for before, after in zip(retrieved, results):
        assert {cid for cid, _ in after[:3]} == {cid for cid, _ in before[:3]}  # the head is re-ordered only
        assert after[3:] == before[3:]
    assert all(len(ranking) == 3 for ranking in cascade.search(QUERIES, CORPUS))  # default: the re-ranked head
    # A list corpus: ids are positions.
    as_list = cascade.search(QUERIES[:1], list(CORPUS.values()), top_k=10)[0]
    assert sorted(cid for cid, _ in as_list) == list(range(10))


def test_top_k_zero_is_the_retriever_alone_and_never_calls_the_ranker(trained_ranker, retriever, tmp_path):
    """What the main job's selection falls back to when no ranker setting beats the retriever."""
    ranker, _ = trained_ranker
    cascade = RetrieverRanker(retriever, ranker, top_k=0, combine="add", cache=tmp_path)
    calls = []
    cascade.ranker = type("Counting", (), {"predict": lambda self, pairs, **kw: calls.append(pairs)})()
    assert cascade.search(QUERIES, CORPUS, top_k=10) == cascade.retrieve(QUERIES, CORPUS, 10)
    assert calls == []
    cascade.top_k, cascade.ranker = 3, ranker  # the same cascade re-ranks again once top_k is set
    assert cascade.search(QUERIES, CORPUS, top_k=10) != cascade.retrieve(QUERIES, CORPUS, 10)


def test_cascade_bad_input_gives_clear_errors(trained_ranker, retriever, tmp_path):
    ranker, _ = trained_ranker
    cascade = RetrieverRanker(retriever, ranker, top_k=5, cache=tmp_path)
    with pytest.raises(ValueError, match="corpus size"):
        cascade.search(QUERIES, CORPUS, top_k=11)
    with pytest.raises(ValueError, match="only 4 codes"):
        cascade.search(QUERIES, dict(list(CORPUS.items())[:4]))
    with pytest.raises(ValueError, match="empty"):
        cascade.search(QUERIES, {})
    with pytest.raises(ValueError, match="empty"):
        cascade.search(QUERIES, [])
    with pytest.raises(ValueError, match="combine"):
        RetrieverRanker(retriever, ranker, combine="multiply")
    with pytest.raises(ValueError, match="top_k"):
        RetrieverRanker(retriever, ranker, top_k=-1)
    with pytest.raises(ValueError, match="pass the list length"):
        RetrieverRanker(retriever, ranker, top_k=0).search(QUERIES, CORPUS)
    assert cascade.search([], CORPUS) == []


def test_the_cascade_setting_is_the_best_on_the_selection_set_and_the_retriever_alone_wins_a_tie(trained_ranker,
                                                                                                  retriever):
    """``choose_cascade_setting`` scores each setting as a cascade built with it alone would, keeps the grid's order
    with the retriever alone first, and leaves the cascade at the best; re-scoring only the first candidate changes
    no order, so it ties the retriever and the retriever alone is chosen."""
    ranker, _ = trained_ranker

    def mrr(top_k, combine, weight, stage="cascade"):
        alone = RetrieverRanker(retriever, ranker, top_k=top_k, combine=combine or "replace",
                                ranker_weight=weight or 1.0, cache=False)
        return evaluate_cascade(alone, RETRIEVAL_SET, show_progress_bar=False)[stage]["mrr@1000"]

    cascade = RetrieverRanker(retriever, ranker, top_k=3, combine="add", ranker_weight=0.7, cache=False)
    grid = [(2, "add", 0.5), (50, "add", 2.0), (5, "replace", None)]  # 50: more than the codebase, cut to it
    seen = []
    choice = choose_cascade_setting(cascade, RETRIEVAL_SET, grid, show_progress_bar=False,
                                    on_setting=lambda *setting: seen.append(setting[:3]))
    settings = [(0, None, None), (2, "add", 0.5), (len(CORPUS), "add", 2.0), (5, "replace", None)]
    assert seen == [settings[2], settings[3], settings[1]]  # the deepest first, so a memo holds every pair
    expected = [mrr(1, None, None, "retriever")] + [mrr(*setting) for setting in settings[1:]]
    assert [(t["top_k"], t["combine"], t["ranker_weight"]) for t in choice["tried"]] == settings
    assert [t["select_mrr"] for t in choice["tried"]] == expected
    best = settings[expected.index(max(expected))]
    assert max(expected) > expected[0]  # the trained ranker re-ranks better than its random retriever
    assert (choice["top_k"], choice["combine"], choice["ranker_weight"]) == best
    assert (choice["select_mrr"], choice["retriever_select_mrr"]) == (max(expected), expected[0])
    # Left at exactly what was scored ("replace" reads no weight: the cascade's own stays).
    assert (cascade.top_k, cascade.combine, cascade.ranker_weight) == (best[0], best[1], best[2] or 0.7)

    before = (cascade.combine, cascade.ranker_weight)
    tie = choose_cascade_setting(cascade, RETRIEVAL_SET, [(1, "add", 0.5)], show_progress_bar=False)
    assert [t["select_mrr"] for t in tie["tried"]] == [expected[0], expected[0]]
    assert (tie["top_k"], tie["combine"], tie["ranker_weight"]) == (0, None, None) and cascade.top_k == 0
    assert (cascade.combine, cascade.ranker_weight) == before  # the retriever alone sets nothing else

    # "add" without a weight is R2PS's sum (weight 1), scored and returned as such.
    unweighted = choose_cascade_setting(cascade, RETRIEVAL_SET, [(len(CORPUS), "add", None)], show_progress_bar=False)
    assert unweighted["tried"][1] == {"top_k": len(CORPUS), "combine": "add", "ranker_weight": 1.0,
                                      "select_mrr": mrr(len(CORPUS), "add", 1.0)}
    for bad in ([], [(5, "sum", None)], [(5, "add", 0.0)], [(0, "add", 0.5)], [(2.5, "replace", None)]):
        with pytest.raises(ValueError, match="grid setting|at least one"):
            choose_cascade_setting(cascade, RETRIEVAL_SET, bad, show_progress_bar=False)
