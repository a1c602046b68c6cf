"""doit task events and built commits in, one progress line per long stage and an
end-of-run summary out.

The per-commit stages (chunks, tokens) run as batch tasks; their commits are counted, not
listed: done/total, rate and time left, rewritten in place on a terminal and printed every
few seconds otherwise. The run's record (which tasks ran, which commits' shards were
built) is kept in RUN for tests and the summary.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from doit.exceptions import TaskFailed
from doit.reporter import ConsoleReporter

from pipeline import cache, parallel

PER_COMMIT_STAGES = ("chunks", "tokens")
_REFRESH_SECONDS_TTY, _REFRESH_SECONDS_LOG = 0.2, 5.0


@dataclass
class RunRecord:
    started: float = field(default_factory=time.perf_counter)
    executed: list = field(default_factory=list)
    up_to_date: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    expected: dict = field(default_factory=dict)
    stage_seconds: dict = field(default_factory=dict)
    outcome: dict | None = None
    notes: list = field(default_factory=list)
    # Commits whose shards were built, and found up to date, by stage.
    built: Counter = field(default_factory=Counter)
    fresh: Counter = field(default_factory=Counter)
    built_shas: dict = field(default_factory=dict)
    processes: dict = field(default_factory=dict)      # stage -> most processes it used


RUN = RunRecord()
_reporter = None          # the running reporter, redrawn as commits are built
# Notes made while doit loads tasks, before the reporter (and its RunRecord) exists.
_pending_notes: list = []


def expect(stage: str, total: int) -> None:
    RUN.expected[stage] = total


def add_stage_time(stage: str, seconds: float) -> None:
    RUN.stage_seconds[stage] = RUN.stage_seconds.get(stage, 0.0) + seconds


def commit_built(stage: str, sha: str) -> None:
    RUN.built[stage] += 1
    RUN.built_shas.setdefault(stage, []).append(sha)
    if _reporter is not None:
        _reporter.draw(stage)


def processes_used(stage: str, count: int) -> None:
    RUN.processes[stage] = max(RUN.processes.get(stage, 1), count)


def commits_up_to_date(stage: str, count: int) -> None:
    RUN.fresh[stage] += count


def record_outcome(stats: dict) -> None:
    RUN.outcome = stats


def note(text: str) -> None:
    """A line for the end of the next run (e.g. how to point doit at a real repository)."""
    if text not in _pending_notes:
        _pending_notes.append(text)


def warn(text: str) -> None:
    """A line for the end of this run, from a task running now."""
    if text not in RUN.notes:
        RUN.notes.append(text)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressReporter(ConsoleReporter):
    desc = "progress lines per stage and a summary"

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        global RUN, _reporter
        RUN = RunRecord(notes=list(_pending_notes))
        _reporter = self
        _pending_notes.clear()
        self.tty = hasattr(outstream, "isatty") and outstream.isatty()
        self.stage_started: dict = {}
        self.last_draw = 0.0
        self.open_line = False

    def _stage(self, task) -> str | None:
        stage = task.name.split(":", 1)[0]
        return stage if stage in PER_COMMIT_STAGES and ":" in task.name else None

    def _close_line(self) -> None:
        """End a progress line that was being rewritten in place."""
        if self.open_line:
            self.write("\n")
            self.open_line = False

    def _line(self, text: str) -> None:
        self._close_line()
        self.write(text + "\n")

    def draw(self, stage: str, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_draw < (_REFRESH_SECONDS_TTY if self.tty
                                                 else _REFRESH_SECONDS_LOG):
            return
        self.last_draw = now
        built, fresh = RUN.built[stage], RUN.fresh[stage]
        total = max(RUN.expected.get(stage, 0), built + fresh)
        elapsed = now - self.stage_started.get(stage, now)
        rate = built / elapsed if elapsed > 0 else 0.0
        left = (total - built - fresh) / rate if rate > 0 else 0.0
        text = (f"{stage:>7}: {built + fresh}/{total} commits ({built} built, {fresh} up to date)"
                f"  {rate:.1f}/s  {_duration(left)} left")
        if self.tty:
            self.write("\r" + text.ljust(88))
            self.open_line = True
        else:
            self.write(text + "\n")
        self.outstream.flush()

    def execute_task(self, task):
        stage = self._stage(task)
        if stage is None:
            if task.actions and not task.name.startswith("_"):
                self._line(f".  {task.name}")
            return
        self.stage_started.setdefault(stage, time.perf_counter())
        self.draw(stage)

    def add_success(self, task):
        RUN.executed.append(task.name)
        self._stage_may_be_done(self._stage(task))

    def skip_uptodate(self, task):
        RUN.up_to_date.append(task.name)
        stage = self._stage(task)
        if stage:
            RUN.fresh[stage] += len(task.targets)     # one shard per commit of the batch
            self._stage_may_be_done(stage)

    def _stage_may_be_done(self, stage: str | None) -> None:
        if stage and RUN.built[stage] + RUN.fresh[stage] >= RUN.expected.get(stage, 0):
            if stage in self.stage_started:           # only a stage that had work to show
                self.draw(stage, force=True)
                self._close_line()

    def add_failure(self, task, fail):
        RUN.failed.append(task.name)
        if isinstance(fail, TaskFailed) and not fail.traceback:
            self.failures.append({"task": task, "exception": fail})
            self._line(f"\nERROR in {task.name}: {fail.message}")
            return
        super().add_failure(task, fail)

    def complete_run(self):
        global _reporter
        _reporter = None
        parallel.shutdown()
        cache.release_run_lock()
        self._close_line()
        failures, self.failures = self.failures, [f for f in self.failures
                                                  if f["exception"].traceback]
        super().complete_run()
        self.failures = failures
        if "commits" not in RUN.executed:
            return                      # not a build (doit gc, retrain_tokenizer, ...)
        if not RUN.failed:
            self._summary()
        elif RUN.notes:
            self._line("\n".join(RUN.notes))

    def _summary(self) -> None:
        elapsed = time.perf_counter() - RUN.started
        built = RUN.built
        lines = [f"done in {_duration(elapsed)} ({elapsed:.1f}s): built {built['chunks']} chunk "
                 f"and {built['tokens']} token shards of {RUN.expected.get('chunks', 0)} commits"]
        if RUN.outcome is None:
            lines.append("dataset/ was already up to date")
        else:
            splits = RUN.outcome["splits"]
            lines.append("examples: " + ", ".join(
                f"{name} {split['rows']} rows / {split['commits']} commits / "
                f"{split['tokens']} tokens" for name, split in splits.items()))
        if RUN.stage_seconds:
            lines.append("time in stages: " + ", ".join(
                f"{stage} {seconds:.1f}s" + (f" ({RUN.processes[stage]} processes)"
                                             if RUN.processes.get(stage, 1) > 1 else "")
                for stage, seconds in RUN.stage_seconds.items()))
        lines += RUN.notes
        self._line("\n".join(lines))
        sys.stdout.flush()
