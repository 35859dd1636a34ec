"""The main job's full size on one GPU as parallel processes, within a time budget.

    python -m benchmarks.full_on_gpu --run-dir runs/gpu --budget 540 model=/tmp/minilm cosqa_dir=/tmp/cosqa bf16=true

A MiniLM row keeps an H200 far from busy (a retriever row of the full size takes ~25 s, most of it Python and data
loading), so the rows run side by side as ordinary ``hf-softnce main --full`` processes, each in a folder of its own
under ``RUN/procs/`` with a subset of the rows (``--methods``); a row that learns from InfoNCE finds InfoNCE's
completed seed linked into its folder. Each completed step (the zero-shot evaluation, the mining report, a row's
seed, the cascade's seed) is then linked into ``RUN/merged/``, and the table is the main job's own
``--report-only`` of that folder: the same rules, intervals and report as a run in one process. In order:

1. InfoNCE at seed 42 (with the zero-shot evaluation), and the rows that learn from no trained row, seed 42;
2. once InfoNCE is done: the rows that learn from it, and the R2PS ranker's learning check
   (``benchmarks/ranker_learning.py``, one process per negative source, an epoch, 1,000 ``cosqa-heldout`` queries);
3. once the check is done: the cascade at seed 42 with the negatives the check chose (the rule below);
4. once every retriever row of seed 42 is done: seeds 43 and 44 for the rows within 0.01 of the best on
   ``cosqa-heldout`` (the main job's own rule, its function), and for the cascade when it is one of them;
5. the merged folder's report with every seed that completed.

The ranker's negatives, by a rule written before the run: of the released head's variants (no warmup), the one whose
trained ranker puts the gold code first among the retriever's top 3 most often on ``cosqa-heldout``; chosen only
when every variant completed (else the cascade keeps the full size's ``FULL_RANKER``).
The seeds-43/44 rule is applied to the retriever rows as soon as they complete (the cascade then runs beside them):
should the cascade be the best row at seed 42, the report's rule (the main job's, with the cascade) keeps fewer rows
than ran, and the extra seeds are simply not read.
A step stopped by the budget is left out of the report (it names it); a second call resumes from the completed steps.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SEED, MORE_SEEDS = 42, (43, 44)
# The ranker check's variants, each a negative source with R2PS's released head and no warmup (FULL_RANKER's):
# (ranker_negatives_from, ranker_negatives_start), given to the cascade as the main job's settings.
RANKER_SOURCES = {
    "released head, no warmup, random 3": ("random", 0),
    "released head, no warmup, positive-aware top 1 + random 2": ("mixed", 0),
    "released head, no warmup, positive-aware probabilistic 3": ("probabilistic", 0),
    "released head, no warmup, positive-aware probabilistic 3 from rank 10": ("probabilistic", 10),
    "released head, no warmup, positive-aware top-3": ("positive-aware top", 0),
    "released head, no warmup, retriever top-3": ("retriever top", 0),
}
RANKER_VARIANTS = {name: [f"ranker_negatives_from={source}", f"ranker_negatives_start={start}"]
                   for name, (source, start) in RANKER_SOURCES.items()}
RANKER_RULE = ("the released head's variant whose trained ranker puts the gold code first among the retriever's top 3 "
               "most often on cosqa-heldout")
QUICK_RULE = ("the candidate whose default row has the highest MRR@1000 on cosqa-heldout; the first listed (today's "
              "setting) within 0.002 of it, then the next")
QUICK_TIE = 0.002
REPORT_RESERVE = 45  # seconds kept for the merged report when the budget runs out


class Runner:
    """Processes started side by side, each logging to ``RUN/logs/NAME.txt``; all stopped at the deadline."""

    def __init__(self, run_dir: Path, budget: float):
        self.run_dir, self.started, self.deadline = run_dir, time.monotonic(), time.monotonic() + budget
        self.running: dict[str, subprocess.Popen] = {}
        self.failed: list[str] = []
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def say(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f}s] {line}", flush=True)

    def start(self, name: str, command: list[str]) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2",
                   HF_SOFTNCE_CACHE=str(self.run_dir / "cache" / name))  # no two processes write one cache file
        with open(self.run_dir / "logs" / f"{name}.txt", "a") as log:  # the child keeps its own descriptor
            self.running[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                  start_new_session=True)
        self.say(f"started {name}")

    def wait(self, *names: str) -> bool:
        """Wait for ``names``; False when the budget (less the report's reserve) ran out first: all are stopped."""
        for name in names:
            process = self.running.get(name)
            if process is None:
                continue
            left = self.deadline - REPORT_RESERVE - time.monotonic()
            try:
                code = process.wait(timeout=max(left, 0.1))
            except subprocess.TimeoutExpired:
                self.say(f"budget spent waiting for {name}: stopping every process")
                self.stop_all()
                return False
            del self.running[name]
            if code:
                self.failed.append(name)
            self.say(f"{name} {'failed (exit %d), see logs/%s.txt' % (code, name) if code else 'done'}")
        return True

    def stop_all(self) -> None:
        for name, process in self.running.items():
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
            self.failed.append(f"{name} (stopped)")
        self.running.clear()


def link_steps(source: Path, target: Path, steps: list[str] | None = None) -> None:
    """Link ``source``'s completed steps (folders holding ``complete.json``; ``steps``: these relative folders only)
    into ``target`` at the same place, where ``target`` has none."""
    found = []
    for folder, dirs, files in os.walk(source):  # links are not followed: each step is linked from where it ran
        if "complete.json" in files:
            found.append(Path(folder).relative_to(source))
            dirs.clear()
    for step in found:
        if steps is not None and str(step) not in steps:
            continue
        link = target / step
        if not (link.is_symlink() or link.exists()):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((source / step).resolve(), target_is_directory=True)


def main_command(folder: Path, seeds, methods, settings, *extra) -> list[str]:
    return [sys.executable, "-m", "hf_softnce", "main", "--full", "--output-dir", str(folder), *settings, *extra,
            "--seeds", *map(str, seeds), "--methods", *methods]


def rows_for_more_seeds(merged: Path, with_cascade: bool) -> tuple[list, bool]:
    """The main job's rule (``main_job._rows_for_more_seeds``) over the merged folder's seed-42 steps."""
    from hf_softnce.training.main_job import _rows_for_more_seeds, _run_dir, cascade_ranks, make_plan
    from hf_softnce.training.manifest import completed
    from hf_softnce.training.plan import CASCADE
    from hf_softnce.training.report import Results

    plan = make_plan("full")
    results = Results()
    for row in plan.rows:
        saved = completed(_run_dir(merged, row, SEED))
        if saved is not None:
            results.add(row.name, saved["metrics"], saved["per_query"])
    plan.cascade = with_cascade
    if with_cascade:
        saved = completed(merged / "r2ps-ranker" / f"seed-{SEED}")
        results.per_query[CASCADE] = [cascade_ranks(saved, results.per_query["InfoNCE"][-1])]
    return _rows_for_more_seeds(plan, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/gpu")
    parser.add_argument("--budget", type=float, default=540, help="seconds for everything, the report included")
    parser.add_argument("--ranker-check-steps", type=int, default=235, help="an epoch of 7,520 queries at 32")
    parser.add_argument("--ranker-check-queries", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=3, help="processes per group of rows")
    parser.add_argument("--quick-candidates", nargs="*", default=[], metavar="'KEY=VALUE ...'",
                        help="settings of --quick to try beside, in fp32 (the first: today's); the rule below")
    parser.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="the main job's settings, every process")
    args = parser.parse_args()

    from hf_softnce.training.plan import BASE_TEACHER, CASCADE, FULL_RANKER, ROW, SIZES

    run_dir = Path(args.run_dir).resolve()
    procs, merged = run_dir / "procs", run_dir / "merged"
    runner = Runner(run_dir, args.budget)
    # However this process ends (an error, timeout's TERM), its children stop with it: a resumed call must never find
    # a stray process still training into a step folder.
    atexit.register(runner.stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    planned = [name for name in SIZES["full"].rows if name != CASCADE]
    learns_from_infonce = [n for n in planned if ROW[n].teacher not in (None, BASE_TEACHER)]
    independent = [n for n in planned if n not in learns_from_infonce and n != "InfoNCE"]
    settings = list(args.settings)

    def groups(names: list[str]) -> list[list[str]]:
        return [names[i::args.processes] for i in range(args.processes) if names[i::args.processes]]

    def with_infonce(folder: Path, seed: int, source: Path) -> Path:
        link_steps(source, folder, ["zero-shot", f"infonce/seed-{seed}"])
        return folder

    # 1. InfoNCE (the teacher of half the rows and of the cascade) and the rows that need no trained row.
    infonce42 = procs / "infonce-42"
    runner.start("infonce-42", main_command(infonce42, [SEED], ["InfoNCE"], settings))
    for i, names in enumerate(groups(independent)):
        runner.start(f"rows-42-{i}", main_command(procs / f"rows-42-{i}", [SEED], names, settings))
    # The quick size's candidates: fp32 as on a CPU, every --quick row, seed 42; each its own folder.
    quick_settings = [item for item in settings if not item.startswith(("bf16=", "ranker_"))]
    for i, candidate in enumerate(args.quick_candidates):
        runner.start(f"quick-{i}", [sys.executable, "-m", "hf_softnce", "main", "--quick", "--output-dir",
                                    str(run_dir / "quick" / _slug(candidate)), *quick_settings, *candidate.split()])
    ok = runner.wait("infonce-42")
    # 2. The rows that learn from InfoNCE, and the ranker's learning check on InfoNCE's ranking.
    chosen = None
    if ok and "infonce-42" not in runner.failed:
        for i, names in enumerate(groups(learns_from_infonce)):
            name = f"teacher-rows-42-{i}"
            runner.start(name, main_command(with_infonce(procs / name, SEED, infonce42), [SEED], ["InfoNCE", *names],
                                            settings))
        check = [sys.executable, "-m", "benchmarks.ranker_learning", *settings, "--retriever",
                 str(infonce42 / "infonce" / f"seed-{SEED}" / "final"), "--output-dir", str(run_dir / "ranker-check"),
                 "--steps", str(args.ranker_check_steps), "--batch-size", "32",
                 "--learning-rate", str(FULL_RANKER["ranker_learning_rate"]),  # the cascade's ranker's
                 "--queries", str(args.ranker_check_queries)]
        for i, variant in enumerate(RANKER_VARIANTS):
            runner.start(f"ranker-check-{i}", check + ["--variants", variant])
        ok = runner.wait(*[f"ranker-check-{i}" for i in range(len(RANKER_VARIANTS))])
        rows = {}
        for variant in RANKER_VARIANTS:
            path = run_dir / "ranker-check" / "rows" / f"{_slug(variant)}.json"
            if path.is_file():
                rows[variant] = json.loads(path.read_text())["trained retriever top-3"]["mean"]
        if len(rows) < len(RANKER_VARIANTS):  # a choice over some sources only is not the rule's
            runner.say(f"ranker check incomplete ({len(rows)} of {len(RANKER_VARIANTS)} sources): the cascade keeps "
                       "the full size's own ranker settings")
        else:
            best = max(rows, key=rows.get)
            chosen = RANKER_VARIANTS[best]
            runner.say(f"ranker check: {json.dumps(rows)}; chosen ({RANKER_RULE}): {best}")
            (run_dir / "ranker-choice.json").write_text(json.dumps(
                {"rule": RANKER_RULE, "top-3 first, trained": rows, "chosen": best, "settings": chosen},
                indent=2))
            runner.start("ranker-check-table", check + ["--variants", *RANKER_VARIANTS])  # the rows are read back
    # 3. The cascade at seed 42 with the chosen negatives.
    cascade_settings = settings + (chosen or [])
    if ok and "infonce-42" not in runner.failed:
        runner.start("cascade-42", main_command(with_infonce(procs / "cascade-42", SEED, infonce42), [SEED],
                                                ["InfoNCE", CASCADE], cascade_settings))
    # 4. Seeds 43 and 44 for the rows close to the best.
    retriever_runs = [n for n in list(runner.running) if n.startswith(("rows-42", "teacher-rows-42"))]
    ok = ok and runner.wait(*retriever_runs)
    for folder in sorted(procs.iterdir()) if procs.is_dir() else []:
        link_steps(folder, merged)
    close = []
    missing = [name for name in planned if not (merged / _slug(name) / f"seed-{SEED}" / "complete.json").is_file()]
    if missing:
        runner.say(f"no seeds {', '.join(map(str, MORE_SEEDS))}: seed {SEED} did not complete for {', '.join(missing)}")
    if ok and not missing:
        close_rows, _ = rows_for_more_seeds(merged, with_cascade=False)
        close = [r.name for r in close_rows]
        runner.say(f"seeds {', '.join(map(str, MORE_SEEDS))} for: {', '.join(close)}")
        for seed in MORE_SEEDS:
            runner.start(f"infonce-and-teacher-rows-{seed}", main_command(
                procs / f"infonce-and-teacher-rows-{seed}", [seed],
                ["InfoNCE", *[n for n in close if n in learns_from_infonce]], settings))
            names = [n for n in close if n in independent]
            if names:
                runner.start(f"rows-{seed}", main_command(procs / f"rows-{seed}", [seed], names, settings))
    ok = ok and runner.wait("cascade-42")
    if ok and not missing and (procs / "cascade-42" / "r2ps-ranker" / f"seed-{SEED}" / "complete.json").is_file():
        link_steps(procs / "cascade-42", merged)
        _, cascade_close = rows_for_more_seeds(merged, with_cascade=True)
        runner.say(f"the cascade is{'' if cascade_close else ' not'} within 0.01 of the best at seed {SEED}")
        for seed in MORE_SEEDS if cascade_close else ():
            source = procs / f"infonce-and-teacher-rows-{seed}"
            runner.wait(f"infonce-and-teacher-rows-{seed}")
            if (source / "infonce" / f"seed-{seed}" / "complete.json").is_file():  # else it would train its own
                runner.start(f"cascade-{seed}", main_command(with_infonce(procs / f"cascade-{seed}", seed, source),
                                                             [seed], ["InfoNCE", CASCADE], cascade_settings))
    runner.wait(*list(runner.running))
    if args.quick_candidates:
        try:
            choose_quick(run_dir, args.quick_candidates, runner)
        except (OSError, ValueError, KeyError) as error:  # the full size's report comes first
            runner.say(f"quick candidates not compared: {error!r}")
    # 5. The table: the main job's report over every completed step.
    for folder in sorted(procs.iterdir()) if procs.is_dir() else []:
        link_steps(folder, merged)
    runner.deadline += REPORT_RESERVE  # the reserve is the report's
    # merged/ holds links and the report's own files only: its manifest is this call's (a first call may have run
    # the cascade with other settings before the check completed), never a reason to refuse the report.
    (merged / "manifest.json").unlink(missing_ok=True)
    methods = [*planned, CASCADE]
    runner.start("report", main_command(merged, [SEED, *MORE_SEEDS], methods, cascade_settings, "--report-only"))
    runner.wait("report")
    print((run_dir / "logs" / "report.txt").read_text()[-6000:])
    runner.say(f"whole run: {time.monotonic() - runner.started:.0f} s; failed or stopped: {runner.failed or 'none'}")


def choose_quick(run_dir: Path, candidates: list[str], runner: Runner) -> None:
    """``RUN/quick-candidates.json``: each candidate's rows (MRR@1000 on both sets) and the rule's choice."""
    from hf_softnce.training.plan import DEFAULT_ROW

    table = {}
    for candidate in candidates:
        path = run_dir / "quick" / _slug(candidate) / "results.json"
        if path.is_file() and json.loads(path.read_text()).get("comparison"):
            comparison = json.loads(path.read_text())["comparison"]
            table[candidate] = {row: {name: round(comparison[name][row]["metrics"]["mrr@1000"], 4)
                                      for name in comparison} for row in comparison[next(iter(comparison))]}
    scored = {c: rows[DEFAULT_ROW]["cosqa-heldout"] for c, rows in table.items() if DEFAULT_ROW in rows}
    chosen = None
    if scored:
        best = max(scored.values())
        chosen = next(c for c in candidates if c in scored and scored[c] >= best - QUICK_TIE)  # today's wins a tie
    (run_dir / "quick-candidates.json").write_text(json.dumps(
        {"rule": QUICK_RULE, "candidates": table, "chosen": chosen}, indent=2))
    runner.say(f"quick candidates (default row, cosqa-heldout): {json.dumps(scored)}; chosen: {chosen!r}")


def _slug(name: str) -> str:
    from hf_softnce.training.plan import run_slug

    return run_slug(name)


if __name__ == "__main__":
    main()
