"""Commits to build in, their shards written by worker processes (one per core) out.

Each commit's shard is a pure function of the commit, so commits can be built in any
process. Workers take consecutive commits in blocks: a worker's symbol index and recent
parses then move a few commits at a time, as they do in one process. A pool serves one
stage of one `doit` run (the run session starts it, and stops it at a new stage, at the
merge and at the end of the run, so no idle worker holds on to its memory).

A stage runs as tasks of consecutive commits, one after the other. So that no worker sits
idle while the others finish a task's last blocks, each task also queues the first blocks
of the commits after it ("ahead"). Their shards are not stored when built: the workers
hand them back and the doit process stores them when the task they belong to runs (and
counts them as built there), so a task is still up to date exactly when its shards exist,
and a run that stops early leaves none of them behind.

Ctrl-C is the doit process's alone: workers start with it blocked and then ignore it, so
none prints a traceback; the run session kills them when the run ends early.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

from pipeline import store
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.run.worker import Worker

# Consecutive commits a worker takes at a time, by stage: a chunks block takes seconds; a
# tokens commit only milliseconds, so its blocks are larger or handing them over would
# cost as much as building them (and its workers' encodings are reused more).
BLOCK = {"chunks": 8, "tokens": 16}
POOL_FROM_COMMITS = 32   # fewer commits than this are built in the doit process
_HELD = {signal.SIGINT, signal.SIGTERM}   # the signals held while workers start
# The one Worker of a pool process, built by its initializer.
_worker: Worker | None = None


def processes_for(settings: Settings, commits: int) -> int:
    """How many processes build this many commits: 1 is the doit process itself."""
    if commits < POOL_FROM_COMMITS:
        return 1
    return settings.jobs or os.cpu_count() or 1


def blocks(stage: str, shas: list, finishing: int = 0) -> list:
    """shas in blocks of BLOCK[stage]. finishing: the stage's last commits are among shas,
    for this many workers; its last block's worth per worker then go one commit at a time,
    so that the workers end together instead of one building a whole block alone."""
    size = BLOCK[stage]
    split = max(len(shas) - finishing * size, 0)
    return [shas[i:min(i + size, split)] for i in range(0, split, size)] + [
        [sha] for sha in shas[split:]]


class Plan(NamedTuple):
    mine: dict        # sha -> the handle of the block built ahead that holds it
    own: list         # blocks of the task's other commits, to build now
    later: list       # blocks of the next tasks' commits, to build ahead


def plan(stage: str, shas: list, after: list, ahead: dict, workers: int) -> Plan:
    """How a task's commits are built, by either pool: those built ahead are taken (popped)
    from ahead (sha -> handle); the rest go in blocks, the stage's last ones a commit at a
    time when no task follows (after is empty); after's commits not under way yet go in
    blocks to build ahead."""
    mine = {sha: ahead.pop(sha) for sha in shas if sha in ahead}
    later = [sha for sha in after if sha not in ahead and sha not in mine]
    own = [sha for sha in shas if sha not in mine]
    return Plan(mine, blocks(stage, own, 0 if after else workers), blocks(stage, later))


def _start_worker(parent: int, settings: Settings) -> None:
    """Build this process's Worker. Ctrl-C is the doit process's to handle: it stops the
    pool. If the doit process dies without doing so (killed), the worker ends too instead
    of waiting forever."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # a Ctrl-C pending since spawn is dropped
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    # One process per core already: the tokenizer's own threads would only contend with
    # the other workers (and spin, burning CPU). Its output is the same either way.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    def end_with_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()
    _worker = Worker(settings)


def _build_block(stage: str, shas: list) -> list:
    return _worker.build_block(stage, shas)


def _build_block_unstored(stage: str, shas: list) -> list:
    return _worker.build_block_unstored(stage, shas)


@contextlib.contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM while workers start. The doit process is then never stopped
    halfway through starting one (the new process would print a traceback when its start-up
    data ends early), and each worker begins with them blocked, since a signal mask
    survives exec: a Ctrl-C while it imports its modules, before it ignores SIGINT, would
    print its traceback too. Held signals arrive when this ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Pool:
    """Worker processes for one stage of a run."""

    def __init__(self, settings: Settings, size: int):
        # spawn, not fork: the doit process holds a sqlite connection, git pipes and
        # torch's threads, none of which a child may share.
        self.executor = ProcessPoolExecutor(
            max_workers=size, initializer=_start_worker, initargs=(os.getpid(), settings),
            mp_context=multiprocessing.get_context("spawn"))
        self.size = size
        # sha -> the future of its block, built ahead and not yet stored (see above).
        self.ahead: dict = {}

    def lookahead(self, stage: str) -> int:
        """How many commits to build ahead of their task: a block per worker, to keep it
        busy until the next task gives more."""
        return self.size * BLOCK[stage]

    def build(self, stage: str, shas: list, after: list = ()):
        """Write the stage's shards of shas; yields each sha as its shard is stored. after:
        up to lookahead(stage) commits of the stage that the next tasks build, in order: those
        not under way yet are built ahead, behind shas."""
        mine, own, later = plan(stage, shas, after, self.ahead, self.size)
        with _signals_held():             # submit starts the worker processes
            futures = [self.executor.submit(_build_block, stage, block) for block in own]
            for block in later:
                future = self.executor.submit(_build_block_unstored, stage, block)
                self.ahead.update(dict.fromkeys(block, future))
        # The futures are not cancelled here when the build stops early: the run session
        # then kills the workers, and in Python 3.11 a future cancelled before its pool
        # breaks makes the executor's thread fail with a traceback.
        try:
            stored_by_workers = set(futures)
            for future in as_completed(futures + list(dict.fromkeys(mine.values()))):
                if future in stored_by_workers:
                    yield from future.result()
                    continue
                for sha, path, record in future.result():
                    if sha in mine:       # its block may hold commits of a later task
                        store.write_record(path, record)
                        yield sha
        except BrokenProcessPool:
            raise PipelineError(
                "a worker process of the build ended abruptly (killed, or out of memory). Run "
                "`doit` again to resume; if it happens again, give fewer processes with "
                "`doit jobs=1` (or another number) or free some memory.") from None

    def shutdown(self) -> None:
        """Stop once the blocks being built are done (the stage is over: there are none,
        unless some were built ahead for tasks that did not run; those are dropped)."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    def terminate(self) -> None:
        """Stop now, killing the workers mid-block: the run is over (Ctrl-C, a failed task)
        and nobody waits for their shards. A shard is written whole or not at all. SIGKILL,
        since a worker still starting holds SIGTERM."""
        # The executor's own processes: Python 3.11 has no public way to end them.
        for process in list((self.executor._processes or {}).values()):
            process.kill()
        self.executor.shutdown(wait=True, cancel_futures=True)
