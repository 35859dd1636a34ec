"""The main job end to end on a tiny model and a small real corpus: intervals, table, JSON, plot and model card."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from sentence_transformers import SentenceTransformer

from conftest import tiny_model_dir
from hf_softnce.defaults import default_model_path
from hf_softnce.evaluation.bootstrap import PairedBootstrap
from hf_softnce.hub import COSQA_DATASET_ID
from hf_softnce.training.cascade_row import CASCADE_WEIGHTS
from hf_softnce.training.main_job import make_plan, run_main_job
from hf_softnce.training.plan import CASCADE, DEFAULT_ROW, ROW, SIZES, PlanError, row_config_values

FIXTURE_COSQA = Path(__file__).parent / "fixtures" / "cosqa"


# A tiny ranker trained a few steps learns nothing that tells codes apart: train_ranker says so, as it should.
@pytest.mark.filterwarnings("ignore:the R2PS ranker scores every candidate alike:RuntimeWarning")
def test_main_job_compares_every_row_with_paired_intervals_and_saves_the_averaged_model(tmp_path, small_corpus,
                                                                                      monkeypatch):
    from dataclasses import replace

    from hf_softnce.training import cascade_row

    real_train_ranker = cascade_row.train_ranker

    def constant_ranker(*args, **kwargs):
        # A real trained ranker with its classifier's weight zeroed: every pair scores tanh(bias), so no setting
        # can beat the retriever and the selection must fall back to the retriever alone (top_k 0).
        ranker = real_train_ranker(*args, **kwargs)
        with torch.no_grad():
            ranker.model.classifier.weight.zero_()
        return ranker

    monkeypatch.setattr(cascade_row, "train_ranker", constant_ranker)
    monkeypatch.setattr(cascade_row, "RANKER_BATCH", 4)  # the ranker's batch is capped below the retrievers' 8
    # A size's own setting for one row (as the full size's alpha/beta for SoftInfoNCE (BM25)) reaches that row's
    # training, its card and results.json, and no other row.
    monkeypatch.setitem(SIZES, "quick", replace(SIZES["quick"], row_settings={"SoftInfoNCE (BM25)": dict(alpha=1.3, beta=0.7)},
                                                default="SoftInfoNCE (BM25)"))
    overrides = dict(
        model=tiny_model_dir(), ranker_model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA),
        max_train_pairs=None, max_steps=3, batch_size=8, max_seq_length=64, use_cpu=True, conala_mix=0.0,
        ranker_top_k=3,
    )
    payload = run_main_job(
        "quick", tmp_path, seeds=[1, 2], overrides=overrides,
        methods=["InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)", CASCADE],
    )
    rows = set(payload["comparison"]["cosqa-dev"])
    assert rows == {"base model (zero-shot)", "InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)", CASCADE}
    # The trained-model estimator is that seed's InfoNCE model, loaded as a separate frozen copy.
    trained_config = json.loads((tmp_path / "softinfonce-trained-model" / "seed-2" / "config.json").read_text())
    assert trained_config["weighter_model"] == str(tmp_path / "infonce" / "seed-2" / "final")
    bm25_config = json.loads((tmp_path / "softinfonce-bm25" / "seed-2" / "config.json").read_text())
    assert (bm25_config["alpha"], bm25_config["beta"]) == (1.3, 0.7) and trained_config["alpha"] is None
    assert payload["row_settings"]["SoftInfoNCE (BM25)"] == dict(alpha=1.3, beta=0.7, loss="soft_infonce", weighter="bm25")
    assert (payload["selection_set"], payload["report_set"]) == ("cosqa-heldout", "cosqa-dev")
    infonce = payload["losses"]["InfoNCE"]
    # The InfoNCE row is named and cited as InfoNCE (MultipleNegativesRankingLoss's citation), built by SoftInfoNCELoss.
    assert (infonce["objective"], infonce["loss"], infonce["negatives"]) == ("InfoNCE", "SoftInfoNCELoss", "in-batch")
    assert len(infonce["citations"]) == 1 and "1807.03748" in infonce["citations"][0]
    assert payload["losses"]["SoftInfoNCE (BM25)"]["objective"] == "SoftInfoNCELoss"
    assert "2310.08069" in payload["losses"]["SoftInfoNCE (BM25)"]["citations"][0]
    assert payload["losses"]["SoftInfoNCE (trained model)"]["teacher"] == "InfoNCE"
    # Every row's interval is a paired bootstrap over the whole dev set, seeds averaged per query: recompute the
    # BM25 row's difference against the base model directly from the saved per-query ranks.
    ranks = payload["per_query_ranks"]

    def rr(run):
        return {f"cosqa-dev/{q}": (1.0 / r if r else 0.0) for q, r in run["cosqa-dev"].items()}

    base = rr(ranks["base model (zero-shot)"][0])
    soft = [rr(run) for run in ranks["SoftInfoNCE (BM25)"]]
    assert len(soft) == 2
    soft_mean = {q: (soft[0][q] + soft[1][q]) / 2 for q in base}
    expected = float(np.mean([soft_mean[q] - base[q] for q in base]))
    got = payload["comparison"]["cosqa-dev"]["SoftInfoNCE (BM25)"]["vs_base"]
    assert got["diff"] == pytest.approx(expected, abs=1e-12)
    boot = PairedBootstrap(sorted(base)).difference(soft_mean, base, given="reciprocal_ranks")
    assert (got["low"], got["high"]) == pytest.approx((boot.low, boot.high), abs=1e-12)
    assert "vs_infonce" in payload["comparison"]["cosqa-dev"][CASCADE]
    assert set(payload["latency_ms_per_query"]) == {"InfoNCE", CASCADE}
    ranker_card = (tmp_path / "r2ps-ranker" / "seed-1" / "final" / "README.md").read_text()
    assert "R2PS" in ranker_card and "sentence_transformers_model_id" not in ranker_card
    # The cascade's top_k/combine: the best of the grid on the selection half, one choice per seed; the retriever
    # alone (top_k 0) is tried first, so the chosen cascade never ranks below its retriever there.
    for seed, choice in zip([1, 2], payload["cascade_settings"]):
        best = max(choice["tried"], key=lambda t: t["select_mrr"])
        assert (choice["top_k"], choice["combine"], choice["select_mrr"]) == (best["top_k"], best["combine"], best["select_mrr"])
        assert choice["tried"][0] == {"top_k": 0, "combine": None, "ranker_weight": None,
                                      "select_mrr": choice["retriever_select_mrr"]}
        assert {t["combine"] for t in choice["tried"][1:]} == {"add", "replace"}
        # add at every weight of the grid, replace at none (the ranker's score alone has no weight)
        assert {t["ranker_weight"] for t in choice["tried"] if t["combine"] == "add"} == set(CASCADE_WEIGHTS)
        assert {t["ranker_weight"] for t in choice["tried"] if t["combine"] == "replace"} == {None}
        assert [t["select_mrr"] for t in choice["tried"]] == [choice["retriever_select_mrr"]] * len(choice["tried"])
        assert (choice["top_k"], choice["combine"]) == (0, None)  # a tie keeps the retriever alone
        assert ranks[CASCADE][seed - 1] == ranks["InfoNCE"][seed - 1]  # the cascade row is its retriever
    assert "re-scores none of it (`ranker_top_k=0`)" in ranker_card
    assert payload["ranker_budget"] == {"negatives": 3, "steps": 3,  # the run's max_steps
                                        "batch_size": 4}
    assert '"batch_size": 4,' in ranker_card and '"ranker_top_k": 0,' in ranker_card
    # results.md names the ranker's own budget and learning rate (the quick plan sets none: the rows' 1e-4).
    assert ("The cascade's ranker: 3 steps of 4 queries, each with its code and 3 negatives, at lr 0.0001; how it "
            "re-ranks, chosen on cosqa-heldout at each seed: top 0 (the retriever alone); top 0 (the retriever "
            "alone).") in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.md").read_text().startswith(
        "# hf-softnce main --quick: the base model, 3 trained rows and the R2PS cascade x 2 seed(s)\n")
    # Every sentence the job prints claims only what its interval supports.
    for sentence in payload["verdicts"]:
        assert ("no measurable difference" in sentence) or ("better by" in sentence) or ("worse by" in sentence)
    table = (tmp_path / "results.md").read_text()
    assert "Δ vs base" in table and "| SoftInfoNCE (BM25) |" in table
    assert "The default row, saved with its card in `hub/`: **SoftInfoNCE (BM25)**." in table
    assert (tmp_path / "results.png").stat().st_size > 10_000

    folder = tmp_path / "hub"
    card = ModelCard.load(folder / "README.md")
    assert "SoftInfoNCELoss" in card.text and "WiSE-FT" in card.text
    assert "Trained for 3 steps of 8 pairs (24 pairs), 2 seed(s): a demonstration size" in card.text
    # The card speaks of its own model: the selection set is queries this model never saw.
    assert "held out from training (`cosqa-heldout`): this model never saw them" in card.text
    assert "| Δ vs InfoNCE (95% CI) |" in card.text and "Δ vs infonce" not in card.text
    assert '"alpha": 1.3,' in card.text and '"sources"' not in card.text  # what trained it, not config defaults
    cosqa = [r for r in card.data.eval_results if r.dataset_type == COSQA_DATASET_ID]
    assert {r.metric_type for r in cosqa} >= {"mrr@1000"}
    # The model-index holds the saved weights' numbers: the first seed's model, on CoSQA dev.
    dev_mrr = next(r.metric_value for r in cosqa if r.metric_type == "mrr@1000" and r.dataset_split == "valid")
    assert dev_mrr == payload["results"]["SoftInfoNCE (BM25)"]["cosqa-dev_mrr@1000"][0]
    assert all(r.dataset_args["corpus_size"] == payload["data"]["cosqa-dev"]["codes"] for r in cosqa)
    # The table shows the seeds' mean, which is the comparison's (reciprocal ranks averaged per query).
    mean = payload["comparison"]["cosqa-dev"]["SoftInfoNCE (BM25)"]["metrics"]["mrr@1000"]
    assert f"{mean:.4f} ± " in card.text and "Side by side with the `InfoNCE` baseline" in card.text
    assert COSQA_DATASET_ID not in (card.data.datasets or [])  # evaluation data is not training data
    assert str(tmp_path) not in card.content and "sentence_transformers_model_id" not in card.content
    config = yaml.safe_load((folder / "training_config.yaml").read_text())
    assert (config["loss"]["config"]["alpha"], config["loss"]["config"]["beta"]) == (1.3, 0.7)
    assert f"| duplicate groups | {config['loss']['config']['duplicate_group_count']:,} |" in card.text
    # The folder holds the saved (WiSE-FT-averaged) weights that were evaluated.
    reloaded = SentenceTransformer(str(folder), device="cpu")
    trained = SentenceTransformer(str(tmp_path / "softinfonce-bm25" / "seed-1" / "final"), device="cpu")
    assert (reloaded.encode(["parse a csv file"]) == trained.encode(["parse a csv file"])).all()


def test_main_job_rejects_unknown_methods_sizes_and_missing_teachers_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="Unknown method"):
        run_main_job("quick", tmp_path, methods=["SoftInfoNCE (magic)"])
    with pytest.raises(ValueError, match="size must be one of"):
        run_main_job("medium", tmp_path)
    assert make_plan("quick", seeds=[np.int64(7)]).seeds == [7]
    for seeds in ([42, 42], [-1], [2**40], [4.2]):  # a seed twice would count twice in every mean and interval
        with pytest.raises(ValueError, match=r"^--seeds must be distinct integers from 0 to 2\*\*32 - 1, got "):
            run_main_job("quick", tmp_path / "never", seeds=seeds)
    # A row whose teacher is left out is refused before the data is read or a model loaded (nothing written).
    for row, teacher in (("SoftInfoNCE (trained model)", "InfoNCE"), (CASCADE, "InfoNCE"),
                         ("GISTEmbedLoss (guide: InfoNCE) + mined negatives", "InfoNCE")):
        with pytest.raises(PlanError, match=f"^'{re.escape(row)}' needs the '{teacher}' row of the same seed"):
            run_main_job("quick", tmp_path / "never", methods=[row])
    # An upload of the default row that --methods leaves out would upload nothing: refused, before the Hub is asked.
    with pytest.raises(ValueError, match=r"^--push-to-hub uploads the default row \(SoftInfoNCE \(trained model\) \+ "
                                         r"mined negatives\), which --methods leaves out: add it\.$"):
        run_main_job("quick", tmp_path / "never", methods=["InfoNCE"], push_to_hub="me/model")
    assert not (tmp_path / "never").exists()


def test_cli_names_a_missing_teacher_in_one_line_within_seconds(tmp_path):
    import subprocess
    import sys
    import time

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hf_softnce", "main", "--quick", "--output-dir", str(tmp_path / "run"),
                           "--methods", "SoftInfoNCE (trained model)"], capture_output=True, text=True)
    assert time.perf_counter() - started < 10
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("hf-softnce: error: main: 'SoftInfoNCE (trained model)' needs the 'InfoNCE' row of the "
                           "same seed: add it to --methods.\n")


def _main_job_config(size: str, **overrides):
    from hf_softnce.training.config import TrainConfig

    return TrainConfig.from_dict({**SIZES[size].settings, **overrides})


@pytest.mark.parametrize("method", ["InfoNCE", "SoftInfoNCE (trained model) + mined negatives"])
def test_cosqa_queries_sharing_a_code_are_not_each_others_negatives(cosqa_dir, tiny_model, method):
    """Under the main job's own configuration (CoSQA train, its duplicate groups, the quick size's loss), two
    queries answered by one code, or by near-duplicate codes of one group, never push each other's code away."""
    from dataclasses import replace

    import torch

    from hf_softnce.data import all_columns, load_cosqa
    from hf_softnce.training.losses import build_loss

    assert method in SIZES["quick"].rows
    # Its frozen estimator: a tiny model, at a length its position table holds.
    teacher = dict(max_seq_length=64, **{ROW[method].teacher_key: tiny_model_dir()}) if ROW[method].teacher else {}
    config = replace(_main_job_config("quick", cosqa_dir=str(cosqa_dir)), **ROW[method].settings, **teacher)
    assert config.data == "cosqa" and config.mask_duplicates
    train = all_columns(load_cosqa(data_dir=cosqa_dir, splits=("train",), verbose=False).train)
    rows_of: dict[int, list[int]] = {}
    for i, group in enumerate(train["dup_group"]):
        rows_of.setdefault(group, []).append(i)
    codes = train["code"]
    same = next(r[:2] for r in rows_of.values() if len(r) > 1 and codes[r[0]] == codes[r[1]])
    near = next([r[0], j] for r in rows_of.values() for j in r if codes[j] != codes[r[0]])
    others = [i for i in range(len(train)) if train["dup_group"][i] not in
              {train["dup_group"][k] for k in same + near}][:4]
    rows = same + near
    tiny_model.eval()
    groups = dict(zip(train["code"], train["dup_group"]))  # what train_retriever hands the loss
    loss = build_loss(config, tiny_model, train, duplicate_groups=groups)
    feats = [tiny_model.preprocess([train[i][column] for i in idx]) for column, idx in
             (("query", rows), ("code", rows), ("code", others))]
    embeddings = [tiny_model(f)["sentence_embedding"] for f in feats]
    _, batch = loss.candidate_batch(embeddings, loss.column_hashes(feats), None)
    kept = torch.ones(4, 8, dtype=torch.bool)
    kept[0, 1] = kept[1, 0] = kept[2, 3] = kept[3, 2] = False
    kept[torch.arange(4), torch.arange(4)] = False  # the positive is not a negative of its own row
    assert torch.equal(batch.negative_mask, kept)
    if method == "InfoNCE":  # and the loss is MNRL over what remains
        from test_soft_infonce import direct_infonce_over, direct_scores

        kept[torch.arange(4), torch.arange(4)] = True
        assert loss(feats, None).item() == pytest.approx(direct_infonce_over(direct_scores(tiny_model, feats), kept).item(), abs=1e-5)


def test_a_sizes_row_settings_reach_that_row_only_and_a_users_key_wins(tiny_model):
    """The full size's measured alpha/beta for SoftInfoNCE (BM25) reach that row's loss, not the trained-model row
    (the paper's 1.3/0.7/t=5 of its own estimator) nor the quick size; a KEY=VALUE of the same name replaces it."""
    from dataclasses import replace

    from hf_softnce.data import all_columns, load_cosqa
    from hf_softnce.training.losses import build_loss

    train = all_columns(load_cosqa(data_dir=FIXTURE_COSQA, splits=("train",), verbose=False).train)

    def _row_settings(size_rows, overrides):
        trained = {"InfoNCE": "runs/infonce/final"}
        return {name: row_config_values(ROW[name], size_rows, overrides, trained, "default")
                for name in ("SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)")}

    full = _row_settings(SIZES["full"].row_settings, {})
    assert full["SoftInfoNCE (BM25)"] == dict(alpha=1.3, beta=0.7, loss="soft_infonce", weighter="bm25")
    assert full["SoftInfoNCE (trained model)"] == dict(ROW["SoftInfoNCE (trained model)"].settings,
                                                         weighter_model="runs/infonce/final")
    assert not SIZES["quick"].row_settings

    def bm25_loss(size, rows, **overrides):
        config = replace(_main_job_config(size, **overrides), **rows["SoftInfoNCE (BM25)"])
        return build_loss(config, tiny_model, train).get_config_dict()

    assert (bm25_loss("full", full)["alpha"], bm25_loss("full", full)["beta"]) == (1.3, 0.7)
    assert (bm25_loss("quick", _row_settings({}, {}))["alpha"], bm25_loss("quick", _row_settings({}, {}))["beta"]) == (1.5, 0.5)
    user = _row_settings(SIZES["full"].row_settings, {"alpha": 2.0})
    assert (bm25_loss("full", user, alpha=2.0)["alpha"], bm25_loss("full", user, alpha=2.0)["beta"]) == (2.0, 0.7)


def test_main_job_trains_on_cosqa_train_less_the_held_out_queries_with_positive_aware_negatives(tmp_path, monkeypatch,
                                                                                                 small_corpus):
    """The default data: CoSQA train (here the fixture folder) less the held-out selection queries; mined negatives
    come from its whole codebase, never the positive's group, never above the margin; a run without CoSQA train
    falls back and says what it left out."""
    folder = tmp_path / "cosqa"
    shutil.copytree(FIXTURE_COSQA, folder)
    codebase = json.loads((folder / "code_idx_map.txt").read_text())
    queries = ["python check if an object is iterable", "python parse an int from a string",
               "python flatten a list of lists", "python get the size of a file"]
    rows = [{"idx": f"cosqa-train-{20 + i}", "doc": q, "code": c, "label": 1, "retrieval_idx": i}
            for i, (q, c) in enumerate(zip(queries, codebase))]
    (folder / "cosqa-retrieval-train-19604.json").write_text(json.dumps(rows))
    from hf_softnce.training import main_job

    mined = {}
    real_mine = main_job.mine_negatives

    def spy(config, train, retriever, **kwargs):
        mined["corpus"], mined["config"] = kwargs["corpus"], config
        mined["out"], report = real_mine(config, train, retriever, **kwargs)
        return mined["out"], report

    monkeypatch.setattr(main_job, "mine_negatives", spy)
    # The packaged all-MiniLM-L6-v2: real scores, so the margin keeps what a real model would keep.
    overrides = dict(model="default", cosqa_dir=str(folder), max_steps=1, batch_size=2, max_seq_length=32,
                     use_cpu=True, wise_ft_weight=None)
    payload = main_job.run_main_job("quick", tmp_path / "run", methods=["InfoNCE + mined negatives"],
                                    overrides=overrides)
    # Half of four queries (at most 1,500) are held out: the other two train, and none of the held-out ones.
    held = payload["per_query_ranks"]["base model (zero-shot)"][0]["cosqa-heldout"]
    assert payload["data"]["sources"] == ["cosqa-retrieval-train"] and payload["data"]["train_pairs"] == 2
    assert payload["data"]["cosqa-heldout"] == {"queries": 2, "codes": len(codebase)}
    trained_queries = set(mined["out"]["query"])
    assert len(trained_queries) == 2 and not trained_queries & {rows[int(q[-2:]) - 20]["doc"] for q in held}
    assert set(mined["corpus"]) == set(codebase)  # the whole codebase, not the two training codes
    assert mined["config"].mining_relative_margin == 0.05 and mined["config"].num_negatives == 1
    base = SentenceTransformer(str(default_model_path()), device="cpu")
    base.max_seq_length = 32  # mined at the training length
    for row in mined["out"]:
        assert row["negative_1"] in codebase and row["negative_1"] != row["code"]
        query, code, negative = base.encode([row["query"], row["code"], row["negative_1"]], convert_to_tensor=True)
        positive_score = torch.cosine_similarity(query, code, dim=0).item()
        assert torch.cosine_similarity(query, negative, dim=0).item() <= positive_score * (1 - 0.05) + 1e-6
    assert payload["mining"]["settings"] == dict(num_negatives=1, mining_strategy="top", mining_relative_margin=0.05)
    assert payload["mining"]["pairs"] == 2 and (payload["mining"]["mined"], payload["mining"]["skipped"]) == (2, 0)
    assert payload["losses"]["InfoNCE + mined negatives"]["negatives"] == "mined"
    saved = json.loads((tmp_path / "run" / "infonce-mined-negatives" / "seed-42" / "config.json").read_text())
    assert (saved["num_negatives"], saved["mining_relative_margin"]) == (1, 0.05)
    assert payload["data"]["cosqa-dev"]["codes"] == len(codebase)
    # Stopped inside the row: the resumed run trains on the pairs mined before, read back, not mined again.
    (tmp_path / "run" / "infonce-mined-negatives" / "seed-42" / "complete.json").unlink()
    monkeypatch.setattr(main_job, "mine_negatives", lambda *a, **k: pytest.fail("mined again"))
    real_train, seen = main_job.train_retriever, []
    monkeypatch.setattr(main_job, "train_retriever", lambda config, data, **kwargs: seen.append(data.train.to_list())
                        or real_train(config, data, **kwargs))
    resumed = main_job.run_main_job("quick", tmp_path / "run", methods=["InfoNCE + mined negatives"],
                                    overrides=overrides)
    assert seen == [mined["out"].to_list()] and resumed["mining"] == payload["mining"]
    # A mining step saved by an earlier version (no data record, no pairs) is mined again, and saved whole.
    report_path = tmp_path / "run" / "mining" / "complete.json"
    report_path.write_text(json.dumps({k: v for k, v in json.loads(report_path.read_text()).items() if k != "data"}))
    shutil.rmtree(tmp_path / "run" / "mining" / "train")
    (tmp_path / "run" / "infonce-mined-negatives" / "seed-42" / "complete.json").unlink()
    monkeypatch.setattr(main_job, "mine_negatives", spy)
    mined.clear()
    again = main_job.run_main_job("quick", tmp_path / "run", methods=["InfoNCE + mined negatives"],
                                  overrides=overrides)
    assert mined["out"].to_list() == seen[0] and again["mining"] == payload["mining"]
    assert json.loads(report_path.read_text())["data"] == json.loads(
        (tmp_path / "run" / "zero-shot" / "complete.json").read_text())["data"]
    assert sorted(p.name for p in (tmp_path / "run" / "mining").iterdir()) == ["complete.json", "train"]
    # The protocol is stated where the numbers are: the printed summary, results.md and the card.
    assert payload["protocol"].startswith("Protocol (CoSQA's published one: CoCLR, R2PS, CoIR): trained on CoSQA's "
                                          "retrieval training split (2 real web queries")
    assert "every choice is made on cosqa-heldout (2 CoSQA training queries no row trains on" in payload["protocol"]
    assert payload["protocol"].endswith("the training codes are functions of that codebase, as in the published "
                                        "protocol, and no dev query is in training.")
    title, protocol, default = (tmp_path / "run" / "results.md").read_text().split("\n\n")[:3]
    assert (title, protocol) == ("# hf-softnce main --quick: the base model and 1 trained row x 1 seed(s)",
                                 payload["protocol"])
    assert default == ("The default row was not run: no `hub/` folder. Each trained row: 1 steps of 2 pairs at lr "
                       "0.0001, seed(s) 42.")

    (folder / "cosqa-retrieval-train-19604.json").unlink()
    (folder / "cosqa-train.json").unlink()
    monkeypatch.setattr(main_job, "FALLBACK_DATA", dict(data=str(small_corpus)))
    payload = main_job.run_main_job("quick", tmp_path / "run2", methods=["InfoNCE"], overrides=overrides)
    assert payload["data"]["sources"] == [str(small_corpus)] and payload["selection_set"] is None
    assert payload["data"]["left_out"][0].startswith("CoSQA train (CoSQA: missing ['cosqa-retrieval-train-19604.json']")
    assert payload["data"]["left_out"][0].endswith(f"trained on {small_corpus} instead")
    # The manifest holds the planned settings, not the fallback's: the same command resumes the run it stopped.
    assert json.loads((tmp_path / "run2" / "manifest.json").read_text())["run"]["settings"]["data"] == "cosqa"
    resumed = main_job.run_main_job("quick", tmp_path / "run2", methods=["InfoNCE"], overrides=overrides,
                                    report_only=True)
    assert resumed["comparison"] == payload["comparison"]


def test_a_stopped_main_job_resumes_from_its_completed_rows_and_another_config_is_refused(tmp_path, small_corpus,
                                                                                         monkeypatch):
    """Stopped after its first row, the job re-run in the same folder trains only what is left and writes the
    results.json of an uninterrupted run; so does a finished run of one row re-run with two; a different
    configuration in that folder is one line, before any work."""
    from hf_softnce.training import main_job
    from hf_softnce.training.manifest import RunFolderMismatch

    overrides = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA), max_steps=2,
                     batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0)
    methods = ["InfoNCE", "SoftInfoNCE (BM25)"]
    whole = run_main_job("quick", tmp_path / "whole", methods=methods, overrides=overrides)

    real_train, trained = main_job.train_retriever, []

    def stopped_at_the_second_row(config, data, **kwargs):
        if len(trained) == 1:
            raise KeyboardInterrupt
        trained.append(config.output_dir)
        return real_train(config, data, **kwargs)

    monkeypatch.setattr(main_job, "train_retriever", stopped_at_the_second_row)
    with pytest.raises(KeyboardInterrupt):
        run_main_job("quick", tmp_path / "run", methods=methods, overrides=overrides)
    assert not (tmp_path / "run" / "results.json").exists()
    trained.clear()
    monkeypatch.setattr(main_job, "train_retriever", lambda config, data, **kwargs: trained.append(config.output_dir)
                        or real_train(config, data, **kwargs))
    resumed = run_main_job("quick", tmp_path / "run", methods=methods, overrides=overrides)
    assert trained == [str(tmp_path / "run" / "softinfonce-bm25" / "seed-42")]  # InfoNCE was read back
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    expected = json.loads((tmp_path / "whole" / "results.json").read_text())
    # The job's time is its steps' own, each recorded when it completed: the resumed run reads InfoNCE's back.
    steps = saved["steps_s"]["by_step"]
    assert list(steps) == ["zero-shot", "InfoNCE seed 42", "SoftInfoNCE (BM25) seed 42"]
    assert steps["InfoNCE seed 42"] == json.loads((tmp_path / "run" / "infonce" / "seed-42" / "complete.json")
                                                  .read_text())["seconds"] > 0
    assert saved["steps_s"]["total"] == sum(steps.values())
    for payload in (saved, expected):
        payload.pop("elapsed_s"), payload.pop("steps_s")
    assert saved == expected and resumed["comparison"] == whole["comparison"]

    trained.clear()
    run_main_job("quick", tmp_path / "extended", methods=["InfoNCE"], overrides=overrides)
    run_main_job("quick", tmp_path / "extended", methods=methods, overrides=overrides)
    assert trained == [str(tmp_path / "extended" / slug / "seed-42") for slug in ("infonce", "softinfonce-bm25")]
    extended = json.loads((tmp_path / "extended" / "results.json").read_text())
    extended.pop("elapsed_s"), extended.pop("steps_s")
    assert extended == expected

    with pytest.raises(RunFolderMismatch, match=r"holds a run with another configuration \(settings\.max_steps: 2 there, "
                                                r"3 now\): use another --output-dir or --overwrite\.$"):
        run_main_job("quick", tmp_path / "run", methods=methods, overrides={**overrides, "max_steps": 3})
    with pytest.raises(RunFolderMismatch, match=r"\(settings\.max_steps: 2 there, 3 now\): report it with the run's "
                                                r"own settings \(its manifest\.json\)\.$"):  # not --overwrite: ignored
        run_main_job("quick", tmp_path / "run", methods=methods, overrides={**overrides, "max_steps": 3},
                     report_only=True)
    trained.clear()
    run_main_job("quick", tmp_path / "run", methods=["InfoNCE"], overrides=overrides, overwrite=True)
    assert trained == [str(tmp_path / "run" / "infonce" / "seed-42")]  # afresh: nothing read back


def test_a_run_resumed_on_other_data_stops_before_any_row_mixes_in(tmp_path, small_corpus, monkeypatch):
    """The zero-shot step records the data the run found; a re-run of the same configuration that finds other data
    (CoSQA's folder gone or back: the settings are the same, what they resolve to is not) stops in one line naming
    both, as does --report-only; an unchanged re-run reads everything back."""
    from hf_softnce.training import main_job
    from hf_softnce.training.manifest import RunFolderMismatch, completed

    overrides = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA), max_steps=2,
                     batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0)
    run_main_job("quick", tmp_path, methods=["InfoNCE"], overrides=overrides)
    record = completed(tmp_path / "zero-shot")["data"]
    assert record["sources"] == [str(small_corpus)] and record["train_pairs"] > 1
    assert record["sets"]["cosqa-dev"] == [2, 4] and set(record["sets"]) >= {"cosqa-heldout", "cosqa-dev"}
    real_train, trained = main_job.train_retriever, []
    monkeypatch.setattr(main_job, "train_retriever", lambda config, data, **kwargs: trained.append(config.output_dir)
                        or real_train(config, data, **kwargs))
    run_main_job("quick", tmp_path, methods=["InfoNCE"], overrides=overrides)
    assert trained == []
    real_load = main_job.load_task_data

    def other_data(config, **kwargs):
        data = real_load(config, **kwargs)
        data.train, data.sources = data.train.select(range(len(data.train) - 1)), ["conala-curated"]
        return data

    def same_counts_other_text(config, **kwargs):
        data = real_load(config, **kwargs)
        data.train = data.train.map(lambda row, i: {"query": row["query"] + " (edited)" if i == 0 else row["query"]},
                                    with_indices=True)
        return data

    monkeypatch.setattr(main_job, "load_task_data", same_counts_other_text)
    with pytest.raises(RunFolderMismatch, match=r"but this run found .*: the data moved"):  # the digest tells
        run_main_job("quick", tmp_path, methods=["InfoNCE"], overrides=overrides)
    monkeypatch.setattr(main_job, "load_task_data", other_data)
    pairs = record["train_pairs"]
    manifest = (tmp_path / "manifest.json").read_bytes()
    for report_only, remedy in ((False, "use another --output-dir or --overwrite"),
                                (True, r"report it where the run's data is \(cosqa_dir, HF_SOFTNCE_DATA_DIR\)")):
        there = re.escape(str(small_corpus))
        with pytest.raises(RunFolderMismatch, match=rf"holds a run on {there} \({pairs:,} pairs; .*cosqa-dev 2x4\), "
                                                    rf"but this run found conala-curated \({pairs - 1:,} pairs; .*\): "
                                                    rf"the data moved .*; {remedy}\.$"):
            # Another seed list would be written into the manifest by a run that goes on: the refused one leaves it.
            run_main_job("quick", tmp_path, seeds=[43], methods=["InfoNCE"], overrides=overrides,
                         report_only=report_only)
        assert (tmp_path / "manifest.json").read_bytes() == manifest
    assert trained == []


def test_a_row_whose_teachers_model_is_not_here_stops_before_any_work(tmp_path, small_corpus, monkeypatch, capsys):
    """InfoNCE's results read back without its model folder (copied from another machine): a row that learns from it
    stops in one line naming the row and the folder before anything trains; --report-only still reports, and says
    that a hub/ folder there is not this table's."""
    from hf_softnce.training import main_job

    overrides = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA), max_steps=2,
                     batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0)
    run_main_job("quick", tmp_path, methods=["InfoNCE"], overrides=overrides)
    shutil.rmtree(tmp_path / "infonce" / "seed-42" / "final")
    trained = []
    monkeypatch.setattr(main_job, "train_retriever", lambda config, data, **kwargs: trained.append(config.output_dir))
    methods = ["InfoNCE", "SoftInfoNCE (trained model)"]
    missing = re.escape(str(tmp_path / "infonce" / "seed-42" / "final"))
    with pytest.raises(FileNotFoundError, match=rf"^SoftInfoNCE \(trained model\) seed 42 learns from InfoNCE's "
                                                rf"model of that seed, {missing}, which is not here"):
        run_main_job("quick", tmp_path, methods=methods, overrides=overrides)
    assert trained == []
    (tmp_path / "hub").mkdir()  # an earlier run's default model
    capsys.readouterr()
    reported = run_main_job("quick", tmp_path, methods=methods, overrides=overrides, report_only=True)
    assert reported["seeds_by_row"] == {"InfoNCE": [42]}
    # The title counts the rows the table holds, not the two planned.
    assert (tmp_path / "results.md").read_text().startswith("# hf-softnce main --quick: the base model and 1 trained "
                                                            "row x 1 seed(s)\n")
    assert f"{tmp_path / 'hub'} is an earlier run's: this table's run saved no default model" in capsys.readouterr().out
    # An upload asked of a run whose default row did not complete uploads nothing, and says so (the table is written).
    import hf_softnce.hub

    monkeypatch.setattr(hf_softnce.hub, "preflight_push", lambda repo: repo)
    with pytest.raises(ValueError, match=r"^--push-to-hub me/model: nothing uploaded: the default row's seed-42 "
                                         r"model is not in this run \(the table is written\)$"):
        run_main_job("quick", tmp_path, methods=["InfoNCE", DEFAULT_ROW], overrides=overrides, report_only=True,
                     push_to_hub="me/model")


def test_a_run_stopped_before_a_setting_existed_resumes_while_the_setting_stays_at_its_default(tmp_path):
    """A manifest written by a version without a key: this run resumes it with the key at its default (and the
    manifest then names the key), and refuses it, naming the key, with the key set otherwise."""
    from hf_softnce.training.main_job import _manifest, _manifest_defaults, make_plan
    from hf_softnce.training.manifest import MANIFEST, RunFolderMismatch, open_run_folder

    run, defaults = _manifest(make_plan("quick")), {"settings": _manifest_defaults()}
    assert run["settings"]["ranker_judged_pairs"] is False == defaults["settings"]["ranker_judged_pairs"]
    older = json.loads(json.dumps(run))
    del older["settings"]["ranker_judged_pairs"]
    for folder in ("same", "set", "no-defaults"):
        assert open_run_folder(tmp_path / folder, older) is False
    assert open_run_folder(tmp_path / "same", run, defaults=defaults) is True
    assert json.loads((tmp_path / "same" / MANIFEST).read_text())["run"] == run
    changed = json.loads(json.dumps(run))
    changed["settings"]["ranker_judged_pairs"] = True
    with pytest.raises(RunFolderMismatch, match=r"\(settings\.ranker_judged_pairs: False there, True now\)"):
        open_run_folder(tmp_path / "set", changed, defaults=defaults)
    with pytest.raises(RunFolderMismatch, match=r"\(settings\.ranker_judged_pairs: absent there, False now\)"):
        open_run_folder(tmp_path / "no-defaults", run)


def test_a_run_resumed_under_another_version_says_so_and_the_manifest_lists_each_version(tmp_path, monkeypatch,
                                                                                          capsys):
    from hf_softnce.training import manifest
    from hf_softnce.training.main_job import _manifest, make_plan

    run = _manifest(make_plan("quick"))
    monkeypatch.setattr(manifest, "code_version", lambda: "0.1.0+aaaaaaa")
    assert manifest.open_run_folder(tmp_path, run) is False
    assert json.loads((tmp_path / manifest.MANIFEST).read_text())["code_versions"] == ["0.1.0+aaaaaaa"]
    assert manifest.open_run_folder(tmp_path, run) is True and "resuming a run" not in capsys.readouterr().out
    monkeypatch.setattr(manifest, "code_version", lambda: "0.1.0+bbbbbbb")
    assert manifest.open_run_folder(tmp_path, run, works=False) is True and capsys.readouterr().out == ""
    assert json.loads((tmp_path / manifest.MANIFEST).read_text())["code_versions"] == ["0.1.0+aaaaaaa"]
    assert manifest.open_run_folder(tmp_path, run) is True
    assert capsys.readouterr().out == ("resuming a run started under hf_softnce 0.1.0+aaaaaaa, now 0.1.0+bbbbbbb: "
                                       "completed steps keep the code they ran under (manifest.json lists each "
                                       "version)\n")
    stored = json.loads((tmp_path / manifest.MANIFEST).read_text())
    assert stored["code_versions"] == ["0.1.0+aaaaaaa", "0.1.0+bbbbbbb"] and stored["run"] == run
    assert manifest.open_run_folder(tmp_path, run) is True and capsys.readouterr().out == ""
    # A manifest written before the list (its one code_version) resumes, the list starting from that version.
    older = tmp_path / "older"
    older.mkdir()
    (older / manifest.MANIFEST).write_text(json.dumps({"run": run, "code_version": "0.1.0+aaaaaaa"}))
    assert manifest.open_run_folder(older, run) is True
    assert json.loads((older / manifest.MANIFEST).read_text())["code_versions"] == ["0.1.0+aaaaaaa", "0.1.0+bbbbbbb"]


def test_a_finished_run_takes_another_seed_and_reports_any_subset_of_its_seeds(tmp_path, small_corpus, monkeypatch):
    """A run folder of seed 42 re-run with seeds 42 and 43 trains seed 43 only; re-run with seed 42 alone it trains
    nothing and writes the seed-42 run's results again (a run stopped mid-way reports the seeds it completed)."""
    from hf_softnce.training import main_job

    overrides = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA), max_steps=2,
                     batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0)
    real_train, trained = main_job.train_retriever, []
    monkeypatch.setattr(main_job, "train_retriever", lambda config, data, **kwargs: trained.append(config.output_dir)
                        or real_train(config, data, **kwargs))
    first = run_main_job("quick", tmp_path, seeds=[42], methods=["InfoNCE"], overrides=overrides)
    trained.clear()
    both = run_main_job("quick", tmp_path, seeds=[42, 43], methods=["InfoNCE"], overrides=overrides)
    assert trained == [str(tmp_path / "infonce" / "seed-43")] and both["seeds"] == [42, 43]
    trained.clear()
    again = run_main_job("quick", tmp_path, seeds=[42], methods=["InfoNCE"], overrides=overrides)
    assert trained == [] and again["seeds"] == [42]
    assert again["per_query_ranks"] == first["per_query_ranks"] and again["results"] == first["results"]
    assert json.loads((tmp_path / "manifest.json").read_text())["run"]["seeds"] == [42]
    # A run stopped mid-way (seed 43 not complete): --report-only trains nothing and leaves that seed out.
    (tmp_path / "infonce" / "seed-43" / "complete.json").unlink()
    trained.clear()
    partial = run_main_job("quick", tmp_path, seeds=[42, 43], methods=["InfoNCE"], overrides=overrides,
                           report_only=True)
    assert trained == [] and partial["seeds_by_row"] == {"InfoNCE": [42]}
    assert partial["per_query_ranks"] == first["per_query_ranks"]
    with pytest.raises(ValueError, match="no completed zero-shot evaluation"):
        run_main_job("quick", tmp_path / "empty", methods=["InfoNCE"], overrides=overrides, report_only=True)


def test_the_default_row_with_a_teacher_is_saved_with_its_card_naming_the_teacher_row(tmp_path, small_corpus):
    """The default row (SoftInfoNCE, trained-model estimator, on mined negatives) goes to hub/ with the weights that
    were evaluated; its card names the estimator as the InfoNCE row's model, never by a local path."""

    assert DEFAULT_ROW == "SoftInfoNCE (trained model) + mined negatives"
    overrides = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA), max_steps=2,
                     batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0)
    payload = run_main_job("quick", tmp_path, methods=["InfoNCE", DEFAULT_ROW], overrides=overrides)
    assert payload["row_settings"][DEFAULT_ROW]["weighter_model"] == "<InfoNCE>"
    # Read back whole (nothing mined again), the run still reports what the mining rules dropped.
    again = run_main_job("quick", tmp_path, methods=["InfoNCE", DEFAULT_ROW], overrides=overrides)
    assert again["mining"] == payload["mining"] and payload["mining"]["dropped_by_relative_margin"] >= 0
    assert again["per_query_ranks"] == payload["per_query_ranks"]
    assert f"The default row, saved with its card in `hub/`: **{DEFAULT_ROW}**." in (tmp_path / "results.md").read_text()
    folder = tmp_path / "hub"
    config = yaml.safe_load((folder / "training_config.yaml").read_text())
    card = (folder / "README.md").read_text()
    assert str(tmp_path) not in card and str(tmp_path) not in json.dumps(config)
    teacher = "this run's InfoNCE model (the InfoNCE row of its results: same pairs and seed; not published)"
    assert f'"weighter_model": "{teacher}"' in card
    # The loss's own config names its estimator the same way (the loaded model only knows its class).
    assert f"| weighter.model | `{teacher}` |" in card
    # The training arguments are what shaped the weights: not how the run saved, logged, evaluated or published,
    # nor a data option left off or a setting left unset.
    arguments = json.loads(card.split("<summary>Training arguments</summary>")[1].split("```json")[1].split("```")[0])
    assert not {"hub_private", "push_to_hub", "save_total_limit", "save_strategy", "evaluate_base", "use_cpu",
                "select_on", "conala_mix", "query_style_rate"} & set(arguments)
    assert None not in arguments.values() and arguments["learning_rate"] == 1e-4 and arguments["max_steps"] == 2
    assert "SoftInfoNCELoss" in card
    # Each real-query set has its own paired intervals under its table; the model-index names the Hub dataset's
    # splits: the held-out queries are a subset of train, dev-500 is the dataset's `valid`.
    assert card.count("Differences with paired bootstrap 95% intervals") == 2
    held_out, dev = card.split("### CoSQA dev-500")
    assert (f"| **{DEFAULT_ROW} (this model)** | "
            f"{payload['comparison']['cosqa-heldout'][DEFAULT_ROW]['metrics']['mrr@1000']:.4f} |") in held_out
    index = {(r.dataset_split, json.dumps(r.dataset_args, sort_keys=True)) for r in ModelCard(card).data.eval_results}
    assert {"train", "valid"} <= {split for split, _ in index}
    assert all('"subset": "cosqa-heldout"' in args for split, args in index if split == "train")
    assert ("Negatives: the batch's other codes, plus 1 hard negative per pair mined with the base model (strategy "
            "`top`; none scoring above 95 % of the positive's score; never the positive or a code of its duplicate "
            "group).") in card
    assert "Recall@1 (dedup)" in card and 'A metric marked "(dedup)", where shown, also\ncounts a code' in card
    reloaded = SentenceTransformer(str(folder), device="cpu")
    trained = SentenceTransformer(str(tmp_path / "softinfonce-trained-model-mined-negatives" / "seed-42" / "final"),
                                  device="cpu")
    assert (reloaded.encode(["parse a csv file"]) == trained.encode(["parse a csv file"])).all()


def test_cascade_grid_scores_each_pair_once_with_the_rankers_own_values():
    """The grid's memo returns exactly what ``CrossEncoder.predict`` returns, scoring each distinct pair once."""
    from hf_softnce.training.ranker import r2ps_ranker
    from hf_softnce.training.cascade_row import memoized_predict as _memoized_predict

    ranker = r2ps_ranker(tiny_model_dir(), max_length=32)
    seen: list = []

    def counting(pairs, **kwargs):
        seen.extend(pairs)
        return ranker.predict(pairs, **kwargs)

    memoized = _memoized_predict(counting)
    top20 = [("read a file", f"def f{i}(): pass") for i in range(6)]
    first = memoized(top20, batch_size=4, show_progress_bar=False)
    again = memoized(top20[:3] + [("read a file", "def g(): pass")], batch_size=4, show_progress_bar=False)
    direct = ranker.predict(top20 + [("read a file", "def g(): pass")], batch_size=4, show_progress_bar=False)
    assert len(seen) == 7 and len(set(seen)) == 7
    np.testing.assert_allclose(first, direct[:6], rtol=0, atol=1e-6)
    np.testing.assert_allclose(again, np.concatenate([direct[:3], direct[6:]]), rtol=0, atol=1e-6)


def test_codebase_encoding_batch_follows_the_device(tiny_model):
    from hf_softnce.training.run import encode_batch_size

    assert encode_batch_size(tiny_model) == 16  # measured fastest on 2 CPU cores (README)


def test_later_seeds_run_the_rows_close_to_the_best_with_their_teachers_and_infonce():
    """With ``more_seeds_within`` the seeds after the first run the rows within it of the best MRR on cosqa-heldout
    at the first seed (0.005 below the best is in, 0.015 below is out), the teachers those rows read
    and InfoNCE; the cascade only when it is close itself."""
    from hf_softnce.training.comparison import BASE_ROW
    from hf_softnce.training.data import HELDOUT
    from hf_softnce.training.main_job import _rows_for_more_seeds, make_plan
    from hf_softnce.training.report import Results

    plan = make_plan("full")
    assert plan.seeds == [42, 43] and plan.more_seeds_within == 0.01
    # 100 queries: a row ranking q_i first for the first n queries and second for the rest has MRR (n + (100-n)/2)/100.
    def ranks(first: int) -> dict:
        return {HELDOUT: {f"q{i}": 1 if i < first else 2 for i in range(100)}}

    mrr = {"SoftInfoNCE (trained model) + mined negatives": 60, "OrderInfoNCE (InfoNCE teacher) + mined negatives": 59,
           "MNRL hardness (hard negatives, 5) + mined negatives": 57, "InfoNCE + mined negatives": 59}
    results = Results()
    results.add(BASE_ROW, {}, ranks(0))
    for row in plan.rows:
        results.add(row.name, {}, ranks(mrr.get(row.name, 30)))
        results.seeds[row.name] = [42]
    results.add(CASCADE, {}, ranks(30))
    results.seeds[CASCADE] = [42]
    rows, cascade = _rows_for_more_seeds(plan, results)
    # best 0.800; 0.795 in (with InfoNCE, the teacher of both); MNRL at 0.785: out
    assert [row.name for row in rows] == ["InfoNCE", "InfoNCE + mined negatives",
                                          "SoftInfoNCE (trained model) + mined negatives",
                                          "OrderInfoNCE (InfoNCE teacher) + mined negatives"]
    assert cascade is False
    results.per_query[CASCADE] = [ranks(61)]
    assert _rows_for_more_seeds(plan, results)[1] is True
    every = make_plan("full", methods=["InfoNCE", "SoftInfoNCE (BM25)"])
    every.more_seeds_within = None
    assert _rows_for_more_seeds(every, results) == (every.rows, False)


def test_a_run_with_the_close_rows_rule_shows_each_rows_seeds_and_their_mrr_range(tmp_path, small_corpus, monkeypatch,
                                                                                   capsys):
    """Seed 43 trains InfoNCE and the rows as close to the best as the rule says (margin 0: the best alone); the
    table shows each row's seeds and per-seed MRR range beside its intervals, results.json each row's seeds; a
    report of the folder with a row's seed 42 cut off says that row is left out of seed 43 too."""
    from dataclasses import replace

    from hf_softnce.training import main_job
    from hf_softnce.training.comparison import rank_metrics
    from hf_softnce.training.data import HELDOUT

    monkeypatch.setitem(SIZES, "quick", replace(SIZES["quick"], seeds=[42, 43], more_seeds_within=0.0))
    overrides = dict(model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA), max_steps=2,
                     batch_size=8, max_seq_length=32, use_cpu=True, conala_mix=0.0)
    methods = ["InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)"]
    payload = run_main_job("quick", tmp_path, methods=methods, overrides=overrides)
    first = {row: rank_metrics([runs[0][HELDOUT]])["mrr@1000"] for row, runs in payload["per_query_ranks"].items()
             if row in methods}
    best = max(first.values())
    later = [row for row in methods if row == "InfoNCE" or first[row] >= best]  # InfoNCE: every row's reference
    assert payload["seeds_by_row"] == {row: [42, 43] if row in later else [42] for row in methods}
    for row in methods:
        entry = payload["comparison"][HELDOUT][row]
        per_seed = [rank_metrics([run[HELDOUT]])["mrr@1000"] for run in payload["per_query_ranks"][row]]
        assert entry["seed_mrr"] == per_seed
        if row != "InfoNCE":  # paired with InfoNCE's runs of the same seeds
            runs = payload["per_query_ranks"][row]
            own = [np.mean([1.0 / run[HELDOUT][q] if run[HELDOUT][q] > 0 else 0.0 for run in runs])
                   for q in sorted(runs[0][HELDOUT])]
            ref = [np.mean([1.0 / run[HELDOUT][q] if run[HELDOUT][q] > 0 else 0.0
                            for run in payload["per_query_ranks"]["InfoNCE"][:len(runs)]])
                   for q in sorted(runs[0][HELDOUT])]
            assert entry["vs_infonce"]["diff"] == pytest.approx(float(np.mean(own) - np.mean(ref)), abs=1e-12)
    table = (tmp_path / "results.md").read_text()
    assert "seeds: MRR range |" in table
    infonce = payload["comparison"][HELDOUT]["InfoNCE"]["seed_mrr"]
    assert f"| 2: {min(infonce):.4f}–{max(infonce):.4f} |" in table
    expected = ("seed(s) 42, 43" if later == methods else
                f"seed 42 for every row; seed 43 for the rows within 0 MRR of the best on {HELDOUT} at seed 42")
    assert expected in table
    (tmp_path / "softinfonce-bm25" / "seed-42" / "complete.json").unlink()
    capsys.readouterr()
    reported = run_main_job("quick", tmp_path, methods=methods, overrides=overrides, report_only=True)
    assert "SoftInfoNCE (BM25)" not in reported["seeds_by_row"]
    assert ("left out of seed(s) 43 (no seed-42 result to choose by): SoftInfoNCE (BM25)\n"
            in capsys.readouterr().out)


def test_the_cascade_setting_in_words_names_the_weight_of_add():
    from hf_softnce.training.report import setting_line, setting_words

    assert setting_words({"top_k": 5, "combine": "add", "ranker_weight": 0.5}) == "add x0.5"
    assert setting_words({"top_k": 20, "combine": "replace", "ranker_weight": None}) == "replace"
    assert setting_words({"top_k": 5, "combine": "add"}) == "add"  # a results.json written before the weight
    assert setting_line({"top_k": 20, "combine": "add", "ranker_weight": 0.5}) == \
        "top_k=20, combine=add, ranker_weight=0.5 (chosen on cosqa-heldout)"
    assert setting_line({"top_k": 0, "combine": None, "ranker_weight": None}) == \
        "top_k=0, the retriever alone: no ranker setting beat it (chosen on cosqa-heldout)"


def test_the_start_line_says_a_gpu_time_is_not_this_cpus(monkeypatch):
    """A size's committed time measured on a GPU (the full size's, when its table came from one): on a machine
    without a GPU the job says to expect hours, with a GPU nothing more; a time measured on CPU (the quick size's)
    never gets the warning."""
    import torch

    from hf_softnce.training.report import last_time

    committed = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "main_full.json")
                           .read_text())
    device = committed.get("device", "").upper()
    on_gpu = "NVIDIA" in device or ("GPU" in device and "NO GPU" not in device)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    warning = ("; this machine has no GPU: expect hours, roughly 10 minutes a row on 2 CPU cores, twice that on "
               "mined negatives")
    assert last_time("full").endswith(warning) is on_gpu
    # A run resumed over sessions is timed by its steps' own seconds, not its last invocation's.
    seconds = (committed.get("steps_s") or {}).get("total") or committed["elapsed_s"]
    assert last_time("full").startswith(f"; last measured {seconds / 60:.1f} min for the whole job")
    assert "no GPU" not in last_time("quick") and last_time("quick").startswith("; last measured ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert "no GPU" not in last_time("full")
