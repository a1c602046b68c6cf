"""Commits to build in, their shards written by worker processes (one per core) out.

Each commit's shard is a pure function of the commit, so commits can be built in any
process. Workers take consecutive commits in blocks: a worker's symbol index and recent
parses then move a few commits at a time, as they do in one process. A pool serves one
stage of one `doit` run (a new stage, the merge or the end of the run shuts it down, so
no idle worker holds on to its memory) and is only started when there is enough work to
pay for starting it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from pipeline.config import Settings
from pipeline.shards import build_block

BLOCK = 8                # consecutive commits a worker takes at a time
POOL_FROM_COMMITS = 32   # fewer commits than this are built in the doit process
_pool: ProcessPoolExecutor | None = None
_pool_for: tuple = ()     # (stage, workers) the pool was started for


def processes_for(settings: Settings, commits: int) -> int:
    """How many processes build this many commits: 1 is the doit process itself."""
    if commits < POOL_FROM_COMMITS:
        return 1
    return settings.jobs or os.cpu_count() or 1


def _start_worker(parent: int) -> None:
    """Ctrl-C is the doit process's to handle: it stops the pool (see shutdown). If the doit
    process dies without doing so (killed), the worker ends too instead of waiting forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def end_with_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()


def _get_pool(stage: str, size: int) -> ProcessPoolExecutor:
    global _pool, _pool_for
    if _pool is None or _pool_for != (stage, size):
        shutdown()
        # spawn, not fork: the doit process holds a sqlite connection, git pipes and
        # torch's threads, none of which a child may share.
        _pool = ProcessPoolExecutor(max_workers=size, initializer=_start_worker,
                                    initargs=(os.getpid(),),
                                    mp_context=multiprocessing.get_context("spawn"))
        _pool_for = (stage, size)
    return _pool


def build(stage: str, settings: Settings, shas: list):
    """Write the stage's shards of shas; yields each sha as its block finishes."""
    workers = processes_for(settings, len(shas))
    blocks = [shas[i:i + BLOCK] for i in range(0, len(shas), BLOCK)]
    if workers == 1:
        for block in blocks:
            yield from build_block(stage, settings, block)
        return
    pool = _get_pool(stage, workers)
    futures = [pool.submit(build_block, stage, settings, block) for block in blocks]
    try:
        for future in as_completed(futures):
            yield from future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def shutdown() -> None:
    """Stop the workers (end of the run, or an interrupted one)."""
    global _pool, _pool_for
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool, _pool_for = None, ()
