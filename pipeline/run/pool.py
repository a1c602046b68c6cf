"""Commits to build in, their shards written by worker processes (one per core) out.

Each commit's shard is a pure function of the commit, so commits can be built in any
process. Workers take consecutive commits in blocks: a worker's symbol index and recent
parses then move a few commits at a time, as they do in one process. A pool serves one
stage of one `doit` run (the run session starts it, and stops it at a new stage, at the
merge and at the end of the run, so no idle worker holds on to its memory).

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

from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.run.worker import Worker

BLOCK = 8                # consecutive commits a worker takes at a time
POOL_FROM_COMMITS = 32   # fewer commits than this are built in the doit process
_HELD = {signal.SIGINT, signal.SIGTERM}   # the signals held while workers start
# The one Worker of a pool process, built by its initializer.
_worker: Worker | None = None


def processes_for(settings: Settings, commits: int) -> int:
    """How many processes build this many commits: 1 is the doit process itself."""
    if commits < POOL_FROM_COMMITS:
        return 1
    return settings.jobs or os.cpu_count() or 1


def blocks(shas: list) -> list:
    return [shas[i:i + BLOCK] for i in range(0, len(shas), BLOCK)]


def _start_worker(parent: int, settings: Settings) -> None:
    """Build this process's Worker. Ctrl-C is the doit process's to handle: it stops the
    pool. If the doit process dies without doing so (killed), the worker ends too instead
    of waiting forever."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # a Ctrl-C pending since spawn is dropped
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)

    def end_with_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()
    _worker = Worker(settings)


def _build_block(stage: str, shas: list) -> list:
    return _worker.build_block(stage, shas)


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

    def build(self, stage: str, shas: list):
        """Write the stage's shards of shas; yields each sha as its block finishes."""
        with _signals_held():             # submit starts the worker processes
            futures = [self.executor.submit(_build_block, stage, block)
                       for block in blocks(shas)]
        # The futures are not cancelled here when the build stops early: the run session
        # then kills the workers, and in Python 3.11 a future cancelled before its pool
        # breaks makes the executor's thread fail with a traceback.
        try:
            for future in as_completed(futures):
                yield from future.result()
        except BrokenProcessPool:
            raise PipelineError(
                "a worker process of the build ended abruptly (killed, or out of memory). Run "
                "`doit` again to resume; if it happens again, give fewer processes with "
                "`doit jobs=1` (or another number) or free some memory.") from None

    def shutdown(self) -> None:
        """Stop once the blocks being built are done (the stage is over: there are none)."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    def terminate(self) -> None:
        """Stop now, killing the workers mid-block: the run is over (Ctrl-C, a failed task)
        and nobody waits for their shards. A shard is written whole or not at all. SIGKILL,
        since a worker still starting holds SIGTERM."""
        # The executor's own processes: Python 3.11 has no public way to end them.
        for process in list((self.executor._processes or {}).values()):
            process.kill()
        self.executor.shutdown(wait=True, cancel_futures=True)
