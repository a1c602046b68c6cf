"""doit task events and the run's events in, one progress line per long stage and an
end-of-run summary out.

The per-commit stages (chunks, tokens) run as batch tasks; their commits are counted, not
listed: done/total, rate and time left, rewritten in place on a terminal and printed every
few seconds otherwise. The reporter only draws: the run session (not the reporter) holds
the lock and the workers.
"""

from __future__ import annotations

import sys
import time

from doit.exceptions import TaskFailed
from doit.reporter import ConsoleReporter

from pipeline.run import events, interrupts

PER_COMMIT_STAGES = ("chunks", "tokens")
_REFRESH_SECONDS_TTY, _REFRESH_SECONDS_LOG = 0.2, 5.0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _run() -> events.RunRecord:
    return events.RUN


class ProgressReporter(ConsoleReporter):
    desc = "progress lines per stage and a summary"

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        events.start_run()
        interrupts.start_run()
        events.listen(self.draw)
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
        run = _run()
        built, fresh = run.built[stage], run.fresh[stage]
        total = max(run.expected.get(stage, 0), built + fresh)
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
        interrupts.check()
        stage = self._stage(task)
        if stage is None:
            if task.actions and not task.name.startswith("_"):
                self._line(f".  {task.name}")
            return
        self.stage_started.setdefault(stage, time.perf_counter())
        self.draw(stage)

    def add_success(self, task):
        _run().executed.append(task.name)
        self._stage_may_be_done(self._stage(task))

    def skip_uptodate(self, task):
        _run().up_to_date.append(task.name)
        stage = self._stage(task)
        if stage:
            _run().fresh[stage] += len(task.targets)   # one shard per commit of the batch
            self._stage_may_be_done(stage)

    def _stage_may_be_done(self, stage: str | None) -> None:
        run = _run()
        if stage and run.built[stage] + run.fresh[stage] >= run.expected.get(stage, 0):
            if stage in self.stage_started:           # only a stage that had work to show
                self.draw(stage, force=True)
                self._close_line()

    def add_failure(self, task, fail):
        _run().failed.append(task.name)
        if isinstance(fail, TaskFailed) and not fail.traceback:
            self.failures.append({"task": task, "exception": fail})
            self._line(f"\nERROR in {task.name}: {fail.message}")
            return
        super().add_failure(task, fail)

    def complete_run(self):
        events.stop_listening(self.draw)
        self._close_line()
        failures, self.failures = self.failures, [f for f in self.failures
                                                  if f["exception"].traceback]
        super().complete_run()
        self.failures = failures
        if interrupts.interrupted():
            return                      # the interrupt's own line says what to do
        if "commits" not in _run().executed:
            return                      # not a build (doit gc, retrain_tokenizer, ...)
        if not _run().failed and not self.runtime_errors:   # doit aborted the run itself
            self._summary()
        elif _run().notes:
            self._line("\n".join(_run().notes))

    def _summary(self) -> None:
        run = _run()
        elapsed = time.perf_counter() - run.started
        built = run.built
        lines = [f"done in {_duration(elapsed)} ({elapsed:.1f}s): built {built['chunks']} chunk "
                 f"and {built['tokens']} token shards of {run.expected.get('chunks', 0)} commits"]
        if run.outcome is None:
            lines.append("dataset/ was already up to date")
        else:
            lines.append("examples: " + ", ".join(
                f"{name} {split['rows']} rows / {split['commits']} commits / "
                f"{split['tokens']} tokens" for name, split in run.outcome["splits"].items()))
        if run.stage_seconds:
            lines.append("time in stages: " + ", ".join(
                f"{stage} {seconds:.1f}s" + (f" ({run.processes[stage]} processes)"
                                             if run.processes.get(stage, 1) > 1 else "")
                for stage, seconds in run.stage_seconds.items()))
        lines += run.notes
        self._line("\n".join(lines))
        sys.stdout.flush()
