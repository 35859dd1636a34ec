"""The main job: the base model and every row of the plan (:mod:`hf_softnce.training.plan`) trained on the same data,
negatives, seeds and steps, compared on real queries with paired intervals. Writes a table (Markdown), JSON, a PNG
plot and the default row's model card folder.

    hf-softnce main --quick          # base, InfoNCE and the default row
    hf-softnce main --full           # every row, hf_softnce's and sentence-transformers' peers, and the R2PS cascade

The protocol is CoSQA's published one (CoCLR, R2PS, CoIR): train on CoSQA's retrieval training split, rank the
whole 6,267-function codebase for each query. Every choice is made on ``cosqa-heldout`` (1,500 training queries no
row trains on); CoSQA dev-500 is only reported. Without CoSQA's training split the job trains on CoNaLa (else the
stdlib corpus) and says what it left out. The run reads straight down: plan -> data -> zero-shot -> the first seed's
rows (negatives mined before the first row that trains on them) and cascade -> the later seeds' rows (with
``more_seeds_within``: the rows close to the best) -> report -> card.
"""

from __future__ import annotations

import copy
import json
import operator
import shutil
import time
from dataclasses import replace
from pathlib import Path

from hf_softnce.embedding_cache import texts_fingerprint
from hf_softnce.hub import describe_loss
from hf_softnce.training.cascade_row import run_cascade
from hf_softnce.training.comparison import BASE_ROW, compare_rows, first_seed_mrr
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.data import HELDOUT, load_task_data
from hf_softnce.training.manifest import (
    COMPLETE, RunFolderMismatch, check_run_folder, completed, mark_complete, open_run_folder, run_step,
)
from hf_softnce.training.models import load_model
from hf_softnce.training.plan import (
    BASE_TEACHER, CASCADE, CASCADE_TEACHER, FALLBACK_DATA, ROW, SIZES, Plan, Row, check_plan, run_slug,
)
from hf_softnce.training.ranker import mine_negatives
from hf_softnce.training.report import (
    Results, describe_row_loss, headline, last_time, setting_line, write_report,
)
from hf_softnce.training.run import evaluate_model, remember_base_metrics, train_retriever


def make_plan(size: str, seeds=None, methods=None, overrides=None) -> Plan:
    if size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}.")
    spec, overrides = SIZES[size], dict(overrides or {})
    seeds = list(seeds or spec.seeds)
    try:
        seeds = [operator.index(seed) for seed in seeds]  # NumPy integers too, not floats
        valid = len(set(seeds)) == len(seeds) and all(0 <= seed < 2**32 for seed in seeds)
    except TypeError:
        valid = False
    if not valid:  # a seed twice would count its runs twice in every mean and interval
        raise ValueError(f"--seeds must be distinct integers from 0 to 2**32 - 1, got {seeds}.")
    names = check_plan(list(methods or spec.rows))
    base = TrainConfig.from_dict({**spec.settings, **overrides})
    mining = {k: v for k, v in spec.mining.items() if k not in overrides}
    return Plan(size, base, [ROW[n] for n in names if n != CASCADE], seeds, spec.row_settings,
                mining, overrides, CASCADE in names, spec.default, spec.more_seeds_within)


def run_main_job(size: str = "quick", output_dir: str | Path = "runs/main", *, seeds: list[int] | None = None,
                 methods: list[str] | None = None, overrides: dict | None = None,
                 push_to_hub: str | None = None, overwrite: bool = False, report_only: bool = False) -> dict:
    """Run (or resume) the main job in ``output_dir``; returns what ``results.json`` holds.

    ``report_only``: the table from the completed steps alone (a run stopped by a time limit): nothing is trained,
    mined or evaluated; each row or seed that did not complete is left out and printed.

    A folder holding a stopped run of the same configuration resumes from its completed steps; one holding another
    configuration raises :class:`~hf_softnce.training.manifest.RunFolderMismatch` unless ``overwrite``.
    """
    plan = make_plan(size, seeds, methods, overrides)
    repo_id = None
    if push_to_hub and plan.default not in [row.name for row in plan.rows]:
        raise ValueError(f"--push-to-hub uploads the default row ({plan.default}), which --methods leaves out: add it.")
    if push_to_hub:
        from hf_softnce.hub import preflight_push

        repo_id = preflight_push(push_to_hub)  # before anything is built or trained
    output_dir = Path(output_dir)
    if report_only and not (output_dir / "zero-shot" / "complete.json").is_file():
        raise ValueError(f"--report-only: {output_dir} holds no completed zero-shot evaluation; nothing to report.")
    # A report has nothing to start afresh: its remedy is the run's own settings and data, not --overwrite.
    remedy = "use another --output-dir or --overwrite"
    settings_remedy = "report it with the run's own settings (its manifest.json)" if report_only else remedy
    data_remedy = "report it where the run's data is (cosqa_dir, HF_SOFTNCE_DATA_DIR)" if report_only else remedy
    fresh = overwrite and not report_only
    # The planned settings, before the data is found: a run that fell back to other data resumes under them too.
    claimed, defaults = _manifest(plan), {"settings": _manifest_defaults()}
    if not fresh:
        check_run_folder(output_dir, claimed, defaults=defaults, remedy=settings_remedy)  # before any work
    started = time.perf_counter()

    def stamp() -> str:
        return f"[{time.perf_counter() - started:6.0f}s]"

    print(f"main job, {size} size: the base model and {len(plan.rows)} trained rows x {len(plan.seeds)} seed(s)"
          f"{last_time(size)}")
    data, base = _load_data(plan.base)
    plan.base = base
    record = _data_record(data)  # what this run found: a resumed run on other data stops, mined pairs are re-mined
    if not fresh:  # before the manifest is rewritten: a refused run leaves the folder as it found it
        _check_data(output_dir, record, data_remedy)
    if open_run_folder(output_dir, claimed, overwrite=fresh, defaults=defaults, works=not report_only,
                       remedy=settings_remedy):
        print(f"resuming the run in {output_dir}: completed steps are read back, not redone")
    results = Results()
    _zero_shot(plan, data, results, output_dir, record)
    print(f"{stamp()} zero-shot: {headline(results.metrics[BASE_ROW])}")
    mined, mining_step = None, None
    rows, cascade = plan.rows, plan.cascade
    for index, seed in enumerate(plan.seeds):
        if index == 1:
            rows, cascade = _rows_for_more_seeds(plan, results)
            print(f"{stamp()} seed(s) {', '.join(map(str, plan.seeds[1:]))}: "
                  + ", ".join([row.name for row in rows] + [CASCADE] * cascade))
            unchosen = [row.name for row in plan.rows if plan.seeds[0] not in results.seeds.get(row.name, [])]
            if report_only and unchosen:  # the later seeds' rows are chosen by the first seed's results
                print(f"left out of seed(s) {', '.join(map(str, plan.seeds[1:]))} (no seed-{plan.seeds[0]} result to "
                      f"choose by): {', '.join(unchosen)}")
        if not report_only:
            _check_teachers(rows, cascade, seed, output_dir)
        trained: dict[str, str] = {}
        for row in rows:
            done = completed(_run_dir(output_dir, row, seed)) is not None
            if report_only and not done:
                print(f"left out (did not complete): {row.name} seed {seed}")
                continue
            if row.negatives and mined is None and not done:
                mined, mining_step = _negatives(plan, data, output_dir / "mining", record)  # once, when first needed
                print(f"{stamp()} {mining_step['summary']}")
            trained[row.name] = _train_row(plan, row, seed, mined if row.negatives else data, trained, output_dir,
                                           results)
            results.seeds.setdefault(row.name, []).append(seed)
            print(f"{stamp()} {row.name} seed {seed}: {headline(results.metrics[row.name])}")
        if cascade and report_only and completed(_cascade_dir(output_dir, seed)) is None:
            print(f"left out (did not complete): {CASCADE} seed {seed}")
        elif cascade:
            _cascade(plan, data, seed, trained.get("InfoNCE", ""), output_dir, results)
            results.seeds.setdefault(CASCADE, []).append(seed)
            print(f"{stamp()} {CASCADE} seed {seed}: {setting_line(results.cascade_choices[-1])}")
    if mining_step is None and any(row.negatives for row in plan.rows):
        mining_step = completed(output_dir / "mining")  # every such row read back: the report of the run that mined
    mining = _mining_report(mining_step)
    if mining_step:
        results.step_seconds["mining"] = mining_step.get("seconds")
    # The card's model is the default row's first seed, completed (a folder can hold the model of a step cut off
    # before its results were saved).
    default = plan.default if plan.seeds[0] in results.seeds.get(plan.default, []) else None
    model_dir = output_dir / run_slug(plan.default) / f"seed-{plan.seeds[0]}" / "final"
    if default and not model_dir.is_dir():
        # Its results were read back from a folder whose models stayed where they were trained (another machine).
        print(f"no model card folder: the default row's model {model_dir} is not here")
        default = None
    payload = write_report(plan, data, results, mining, output_dir, time.perf_counter() - started,
                           default_saved=default is not None)
    if default is None and (output_dir / "hub").is_dir():
        print(f"{output_dir / 'hub'} is an earlier run's: this table's run saved no default model")
    if default is None and repo_id:
        raise ValueError(f"--push-to-hub {repo_id}: nothing uploaded: the default row's seed-{plan.seeds[0]} model "
                         "is not in this run (the table is written)")
    if default:
        from hf_softnce.training.publish import save_default_model_folder

        config = replace(base, seed=plan.seeds[0], **plan.described_row_values(ROW[default]))
        folder = save_default_model_folder(output_dir, config, data, results.metrics, results.seeds[default], default,
                                           repo_id,
                                           loss=results.card_losses[default],
                                           model_dir=model_dir,
                                           comparison=compare_rows(results.per_query, seeds=results.seeds))
        print(f"model card folder: {folder}")
    elapsed, total = time.perf_counter() - started, payload["steps_s"]["total"]
    resumed = (f"; its steps took {total / 60:.1f} min in all, over every run of this folder"
               if (total or 0) > elapsed + 60 else "")
    print(f"finished in {elapsed / 60:.1f} min{resumed}")  # last: it covers the card folder too
    return payload


def _load_data(config: TrainConfig):
    """The run's data and config: CoSQA's training split, else the fallback data with a ``left out:`` line."""
    try:
        data = load_task_data(config)
    except FileNotFoundError as error:
        if config.data != "cosqa":
            raise
        config = replace(config, **FALLBACK_DATA)
        data = load_task_data(config)
        data.left_out.insert(0, f"CoSQA train ({str(error).splitlines()[0]}): trained on {', '.join(data.sources)} "
                                "instead")
    print(f"data: {len(data.train)} training pairs from {', '.join(data.sources)}; " + ", ".join(
        f"{name}: {len(s)} queries x {len(s.corpus)} codes" for name, s in data.eval_sets().items()))
    for missing in data.left_out:
        print(f"left out: {missing}")
    if data.real_report is None:
        print("left out: CoSQA dev (no ../shared/data/cosqa, HF_SOFTNCE_DATA_DIR or cosqa_dir): no real-query rows")
    return data, config


def _manifest(plan: Plan) -> dict:
    """The configuration a run folder is claimed for (JSON-plain, so a re-run compares equal)."""
    settings = {k: v for k, v in plan.base.to_dict().items() if k != "output_dir"}
    return json.loads(json.dumps({"size": plan.size, "seeds": plan.seeds, "rows": [row.name for row in plan.rows],
                                  "cascade": plan.cascade, "settings": settings, "row_settings": plan.row_settings,
                                  "mining": plan.mining}))


def _manifest_defaults() -> dict:
    """Every setting's default, JSON-plain as in the manifest: a run stopped before a key existed resumes when this
    run leaves the key at its default."""
    return json.loads(json.dumps(TrainConfig().to_dict()))


def _run_dir(output_dir: Path, row: Row, seed: int) -> Path:
    return output_dir / run_slug(row.name) / f"seed-{seed}"


def _cascade_dir(output_dir: Path, seed: int) -> Path:
    return output_dir / "r2ps-ranker" / f"seed-{seed}"  # where run_cascade trains the ranker of that seed


def _check_teachers(rows: list[Row], cascade: bool, seed: int, output_dir: Path) -> None:
    """Before a seed's work: each row (and cascade) left to train whose teacher's step completed has that teacher's
    model folder here; results copied from another machine without the models would otherwise fail the row hours in.

    Raises:
        FileNotFoundError: one line naming the row, the seed and the missing folder.
    """
    needs = [(row.name, _run_dir(output_dir, row, seed), row.teacher) for row in rows
             if row.teacher not in (None, BASE_TEACHER)]
    if cascade:
        needs.append((CASCADE, _cascade_dir(output_dir, seed), CASCADE_TEACHER))
    for name, folder, teacher in needs:
        model = _run_dir(output_dir, ROW[teacher], seed) / "final"
        if completed(folder) is None and completed(model.parent) is not None and not model.is_dir():
            raise FileNotFoundError(
                f"{name} seed {seed} learns from {teacher}'s model of that seed, {model}, which is not here (its "
                "results were read back without it): copy that folder here, or use another --output-dir.")


def _check_data(output_dir: Path, found: dict, remedy: str) -> None:
    """A resumed run that finds other data than its zero-shot step recorded (CoSQA gone or back, another copy) stops
    rather than put rows of both in one table."""
    saved = completed(output_dir / "zero-shot")
    if saved is not None and saved.get("data", found) != found:  # a folder from before the record: nothing to check
        raise RunFolderMismatch(
            f"{output_dir} holds a run on {_data_words(saved['data'])}, but this run found {_data_words(found)}: the "
            f"data moved (HF_SOFTNCE_DATA_DIR, the working directory or the Hub); {remedy}.")


def _zero_shot(plan: Plan, data, results: Results, output_dir: Path, found: dict) -> None:
    """The base model's evaluation, the run's first step: it records the data the run found (``_check_data``)."""
    def evaluate() -> dict:
        per_query: dict = {}
        metrics = evaluate_model(load_model(plan.base.model), data, per_query=per_query)
        return {"metrics": metrics, "per_query": per_query, "data": found}

    saved = run_step(output_dir / "zero-shot", evaluate)
    results.step_seconds["zero-shot"] = saved.get("seconds")
    remember_base_metrics(data, plan.base.model, saved["metrics"])  # every row's card shows it; never evaluated twice
    results.add(BASE_ROW, saved["metrics"], saved["per_query"])


def _data_record(data) -> dict:
    """The data a run trains and evaluates on, JSON-plain: its sources, training pairs, each set's size, and a digest
    of the training pairs' and the sets' texts (another copy with the same counts is other data)."""
    sets = data.eval_sets()
    texts = [*data.train["query"], *data.train["code"]]
    for retrieval_set in sets.values():
        texts += [*retrieval_set.queries.values(), *retrieval_set.corpus.values()]
    return {"sources": list(data.sources), "train_pairs": len(data.train),
            "sets": {name: [len(s), len(s.corpus)] for name, s in sets.items()}, "digest": texts_fingerprint(texts)}


def _data_words(record: dict) -> str:
    sets = ", ".join(f"{name} {queries}x{codes}" for name, (queries, codes) in record["sets"].items())
    return f"{', '.join(record['sources'])} ({record['train_pairs']:,} pairs; {sets})"


def _rows_for_more_seeds(plan: Plan, results: Results) -> tuple[list[Row], bool]:
    """The rows (and whether the cascade) that run the seeds after the first: with ``plan.more_seeds_within``, those
    within it of the best MRR on the selection set at the first seed, their teachers and InfoNCE (every row's
    reference); else every row. Without the selection set, every row."""
    margin = plan.more_seeds_within
    mrr = first_seed_mrr(results.per_query, HELDOUT, [name for name in results.per_query if name != BASE_ROW],
                         seeds=results.seeds, first=plan.seeds[0])
    if margin is None or not mrr:
        return plan.rows, plan.cascade
    best = max(mrr.values())
    close = {name for name, value in mrr.items() if value >= best - margin} | {"InfoNCE"}
    cascade = plan.cascade and CASCADE in close
    if cascade:
        close.add(CASCADE_TEACHER)
    for row in reversed(plan.rows):  # a teacher is planned before its rows: one pass from the end closes the set
        if row.name in close and row.teacher not in (None, BASE_TEACHER):
            close.add(row.teacher)
    return [row for row in plan.rows if row.name in close], cascade


def _negatives(plan: Plan, data, folder: Path, record: dict):
    """The training data of the rows with mined negatives, and the mining step's saved payload (its report, the data
    ``record`` and its seconds).

    The frozen base model ranks the whole codebase once for every such row, at the training length (the texts as
    the trained model reads them, at half the encoding cost); the positive's duplicate group is never a negative.
    The mined pairs are kept in ``folder`` with the report and the data ``record`` they were mined from: a resumed
    run's rows train on the very negatives the earlier rows did (not on a second mining, whose near-ties at the margin
    could fall otherwise on another machine), unless the data changed.
    """
    from datasets import load_from_disk

    from hf_softnce.data.corpus import save_dataset

    mined = copy.copy(data)  # the same evaluation sets (and remembered base metrics), another training set
    saved, pairs = completed(folder), folder / "train"
    if saved is not None and saved.get("data") == record and pairs.is_dir():
        mined.train = load_from_disk(str(pairs))
        return mined, saved
    started = time.perf_counter()
    config = replace(plan.base, **plan.mining)
    model = load_model(config.model, max_seq_length=config.max_seq_length)
    mined.train, report = mine_negatives(config, data.train, model, corpus=data.codebase, progress=False,
                                         with_report=True)
    searched = f"the whole {len(data.codebase):,}-code codebase" if data.codebase else "the training codes"
    mining = {"settings": plan.mining, "model": config.model, "searched": searched,
              "pairs": report.rows, "mined": report.mined, "skipped": report.skipped,
              "excluded_positives_and_duplicates": report.excluded,
              "dropped_by_relative_margin": report.dropped_by_relative_margin,
              "dropped_by_absolute_margin": report.dropped_by_absolute_margin,
              "summary": f"mined by the base model from {searched}. {report.summary()}"}
    # The report marks the pairs whole: it goes first and comes back last, the pairs renamed into place between.
    (folder / COMPLETE).unlink(missing_ok=True)
    partial = folder / "train.partial"
    shutil.rmtree(partial, ignore_errors=True)
    save_dataset(mined.train, partial, progress=False)  # the job prints its own progress lines
    shutil.rmtree(pairs, ignore_errors=True)
    partial.replace(pairs)
    saved = {**mining, "data": record, "seconds": time.perf_counter() - started}
    mark_complete(folder, saved)
    return mined, saved


def _mining_report(saved: dict | None) -> dict | None:
    """What the mining step saved, less the data record its pairs were checked against and its time."""
    return None if saved is None else {k: v for k, v in saved.items() if k not in ("data", "seconds")}


def _train_row(plan: Plan, row: Row, seed: int, data, trained: dict[str, str], output_dir: Path,
               results: Results) -> str:
    """Train, evaluate and save one row for one seed (or read it back when it completed before); returns its saved
    model folder."""
    run_dir = _run_dir(output_dir, row, seed)

    def train() -> dict:
        config = replace(plan.base, seed=seed, output_dir=str(run_dir), **plan.row_values(row, trained))
        result = train_retriever(config, data, progress=False)
        return {"metrics": result.metrics, "per_query": result.per_query,
                "loss": describe_row_loss(row, result.loss, config),
                "card_loss": json.loads(json.dumps(describe_loss(result.loss), default=str))}

    saved = run_step(run_dir, train)
    results.step_seconds[f"{row.name} seed {seed}"] = saved.get("seconds")
    results.add(row.name, saved["metrics"], saved["per_query"])
    results.losses.setdefault(row.name, saved["loss"])
    results.card_losses.setdefault(row.name, saved["card_loss"])
    return str(run_dir / "final")


def _cascade(plan: Plan, data, seed: int, retriever: str, output_dir: Path, results: Results) -> None:
    def cascade() -> dict:
        per_query, latency, choice = run_cascade(plan.base, data, seed, retriever, output_dir, CASCADE)
        return {"per_query": per_query, "latency": latency, "choice": choice}

    saved = run_step(_cascade_dir(output_dir, seed), cascade)
    results.step_seconds[f"{CASCADE} seed {seed}"] = saved.get("seconds")
    results.per_query.setdefault(CASCADE, []).append(cascade_ranks(saved, results.per_query["InfoNCE"][-1]))
    results.latency = saved["latency"]
    results.cascade_choices.append(saved["choice"])


def cascade_ranks(saved: dict, retriever_ranks: dict) -> dict:
    """A completed cascade step's per-query ranks. With ``top_k=0`` the cascade is its retriever itself: its row is
    ``retriever_ranks``, that retriever row's own ranking (in the main job the InfoNCE row's last seed), not a second
    encoding at another batch size whose padding could swap near-ties."""
    return saved["per_query"] if saved["choice"]["top_k"] else retriever_ranks


__all__ = ["SIZES", "run_main_job", "make_plan"]
