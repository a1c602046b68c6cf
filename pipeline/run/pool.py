"""Commits to build in, their shards written by worker processes (one per core) out.

Each commit's shard is a pure function of the commit, so commits can be built in any
process. Workers take consecutive commits in blocks: a worker's symbol index and recent
parses then move a few commits at a time, as they do in one process. A pool serves one
stage of one `doit` run (the run session starts it, and stops it at a new stage, at the
merge and at the end of the run, so no idle worker holds on to its memory).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from pipeline.config import Settings
from pipeline.run.worker import Worker

BLOCK = 8                # consecutive commits a worker takes at a time
POOL_FROM_COMMITS = 32   # fewer commits than this are built in the doit process
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
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def end_with_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()
    _worker = Worker(settings)


def _build_block(stage: str, shas: list) -> list:
    return _worker.build_block(stage, shas)


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
        futures = [self.executor.submit(_build_block, stage, block) for block in blocks(shas)]
        try:
            for future in as_completed(futures):
                yield from future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
