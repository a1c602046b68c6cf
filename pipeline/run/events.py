"""What happens in a run in (tasks run, commits built, notes), the run's record out.

Task actions report here; the progress reporter listens and draws; tests read RUN.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from pipeline.run import interrupts


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
    pools_started: list = field(default_factory=list)  # the stage of each pool started


RUN = RunRecord()
# Called with the stage whenever a commit's shard is built (the reporter redraws).
_listeners: list = []
# Notes made while doit loads tasks, before the run (and its RunRecord) starts.
_pending_notes: list = []


def start_run() -> RunRecord:
    """A new record for a new run; notes made while tasks were loaded go into it."""
    global RUN
    RUN = RunRecord(notes=list(_pending_notes))
    _pending_notes.clear()
    return RUN


def listen(callback) -> None:
    """Call callback(stage) whenever a commit's shard is built."""
    _listeners.append(callback)


def stop_listening(callback) -> None:
    if callback in _listeners:
        _listeners.remove(callback)


def expect(stage: str, total: int) -> None:
    RUN.expected[stage] = total


def add_stage_time(stage: str, seconds: float) -> None:
    RUN.stage_seconds[stage] = RUN.stage_seconds.get(stage, 0.0) + seconds


def commit_built(stage: str, sha: str) -> None:
    interrupts.check()
    RUN.built[stage] += 1
    RUN.built_shas.setdefault(stage, []).append(sha)
    for callback in _listeners:
        callback(stage)


def processes_used(stage: str, count: int) -> None:
    RUN.processes[stage] = max(RUN.processes.get(stage, 1), count)


def pool_started(stage: str) -> None:
    RUN.pools_started.append(stage)


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
