"""Commits to build in, their shards written by worker processes (one per core) out.

Each commit's shard is a pure function of the commit, so commits can be built in any
process. Workers take consecutive commits in blocks: a worker's symbol index and recent
parses then move a few commits at a time, as they do in one process. A pool serves one
repository's per-commit stages of one `doit` run: the run session starts it for the
chunks stage, keeps its workers for the tokens stage (starting processes again would cost
each a second of imports and set-up) and for writing a first merge's parts, and stops it
then, at another repository's stage and at the end of the run, so no idle worker holds on
to its memory.

A stage runs as tasks of consecutive commits, one after the other. So that no worker sits
idle while the others finish a task's last blocks, or while one builds a commit that
takes seconds alone (a root commit that adds a whole code base), the workers go on with
the blocks of the next tasks' commits ("ahead", up to lookahead() commits past the task),
kept fed a block or two at a time. The local pool's workers store those shards as they
build them (a valid shard of a later task is simply up to date when that task runs, in
this run or the next); the run session counts them as built when their task runs. A task
ends once its commits' shards are stored, while their block may go on with the next
tasks' commits.

Ctrl-C is the doit process's alone: workers start with it blocked and then ignore it, so
none prints a traceback; the run session kills them when the run ends early.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple

from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.run import interrupts
from pipeline.run.worker import Worker

# Consecutive commits a worker takes at a time, by stage, at most. A worker's parses, their
# analyses and its symbol index follow the commits it builds: where a file's next change
# falls in another worker's block, its old version is parsed and analysed again, and between
# two of its blocks a worker's index moves over the commits the others built, reading or
# parsing the definitions of the file versions they brought. Chunks stage of cargo (23,087
# commits) on two workers: blocks of 64, 512, 1,024 and 2,048 commits took 288, 267, 244 and
# 245 CPU-s. A block's commits count as built as their shards are stored, so the progress
# shown does not wait for a large block (see BlockPool.build). A tokens commit takes
# milliseconds, so its blocks are large enough that handing them over costs little beside
# building them.
BLOCK = {"chunks": 1024, "tokens": 16}
POOL_FROM_COMMITS = 32   # fewer commits than this are built in the doit process
# The one Worker of a pool process, built by its initializer.
_worker: Worker | None = None


def processes_for(settings: Settings, commits: int) -> int:
    """How many processes build this many commits: 1 is the doit process itself."""
    if commits < POOL_FROM_COMMITS:
        return 1
    return settings.jobs or os.cpu_count() or 1


# A stage's last blocks shrink to this many commits; then its last TAIL_BLOCK commits per
# worker go one at a time.
TAIL_BLOCK = 8


def blocks(stage: str, shas: list, workers: int = 0, behind: int = 0) -> list:
    """shas in blocks of BLOCK[stage]. Given workers (the pool's size), shas are the stage's
    last commits but behind: then each block is at most a worker's share of the commits
    left (guided scheduling), down to TAIL_BLOCK, and the stage's last TAIL_BLOCK commits
    per worker go one at a time, so that the workers end together instead of one building
    a large block alone."""
    found, start = [], 0
    while start < len(shas):
        size = BLOCK[stage]
        if workers:
            left = len(shas) - start + behind
            singles = workers * TAIL_BLOCK
            share = -(-left // workers)
            if left <= singles:
                size = 1
            else:
                size = min(size, max(TAIL_BLOCK, share), left - singles)
        found.append(shas[start:start + size])
        start += size
    return found


# How far past its task a stage's commits are started on, in blocks per worker: enough for
# the other workers to keep busy while one builds a commit that takes as long as this many
# blocks (2,048 and 256 commits).
AHEAD_BLOCKS = {"chunks": 2, "tokens": 16}


class Plan(NamedTuple):
    mine: dict        # sha -> the handle of the block built ahead that holds it
    own: list         # blocks of the task's other commits, to build now
    later: list       # blocks of the next tasks' commits, to build ahead


def plan(stage: str, shas: list, after: list, ahead: dict, workers: int,
         lookahead: int) -> Plan:
    """How a task's commits are built, by either pool: those built ahead are taken (popped)
    from ahead (sha -> handle); the rest go in blocks; after's commits not under way yet go
    in blocks to build ahead. after holds up to lookahead commits: fewer when it reaches the
    end of the stage, whose last blocks then shrink (see blocks)."""
    mine = {sha: ahead.pop(sha) for sha in shas if sha in ahead}
    later = [sha for sha in after if sha not in ahead and sha not in mine]
    own = [sha for sha in shas if sha not in mine]
    ending = workers if len(after) < lookahead else 0
    return Plan(mine, blocks(stage, own, ending, len(later)), blocks(stage, later, ending))


# How often a task waiting for blocks looks for the shards their workers stored.
POLL_SECONDS = 0.5


class BlockPool:
    """What both pools share: a task's build, its blocks and those of the next tasks kept
    flowing to the workers. A pool names its running blocks by handles (a future, a Ray
    object ref): it starts a block, waits for any of some handles, and takes a finished
    block's commits of a task."""

    size: int
    # Whether workers store their shards (else _take stores those a block returns).
    workers_store_shards = False

    def __init__(self):
        # sha -> the handle of its block, started ahead of its task and not yet taken.
        self.ahead: dict = {}
        self._running: set = set()      # handles of blocks not finished
        # Handles of blocks whose commits their tasks counted as stored before the block
        # returned, and that no task will take: checked for an error once they finish.
        self._unclaimed: set = set()

    def lookahead(self, stage: str) -> int:
        """How many commits past a task the session lists for it to build ahead."""
        return AHEAD_BLOCKS[stage] * self.size * BLOCK[stage]

    def build(self, stage: str, shas: list, after: list = (), stored=None):
        """Write the stage's shards of shas; yields each sha as its shard is stored: when its
        block returns or, where workers store shards, as soon as stored (sha -> whether its
        shard is in the cache) finds it, so that a large block's commits count, and their
        task ends, as they are built. after: up to lookahead(stage) commits of the stage
        that the next tasks build, in order, not yet stored: those not under way yet are
        built ahead, behind shas, while a worker would otherwise wait."""
        mine, own, later = plan(stage, shas, after, self.ahead, self.size,
                                self.lookahead(stage))
        waiting = set(mine.values()) | {self._start(stage, block) for block in own}
        later.reverse()                    # popped from the end: in order
        wanted = set(shas)
        try:
            while wanted and waiting:
                # Two blocks per worker under way: one to build, one ready to start.
                while later and len(self._running) < 2 * self.size:
                    block = later.pop()
                    self.ahead.update(dict.fromkeys(block, self._start(stage, block)))
                if stored is not None and self.workers_store_shards:
                    found = [sha for sha in shas if sha in wanted and stored(sha)]
                    wanted.difference_update(found)
                    yield from found
                    if not wanted:
                        break
                for handle in self._finished(self._running | waiting):
                    self._running.discard(handle)
                    if handle in waiting:
                        waiting.discard(handle)
                        taken = self._take(stage, handle, wanted)
                        wanted.difference_update(taken)
                        yield from taken
                    elif handle in self._unclaimed:
                        self._check(handle)
        finally:
            self._unclaimed |= waiting - set(self.ahead.values())
        if not after:
            # The stage's last task: its blocks end (storing what a block stores last, the
            # definitions or summaries) before the run can end and stop the workers.
            self.finish_stage()

    def finish_stage(self) -> None:
        """The stage is over and the workers go on with the next one (or stop): wait for
        the blocks still under way (those of tasks that ended as their shards were stored,
        or started ahead for tasks that did not run), raise the error one of them ended
        with, then forget them, so that no handle of this stage's stands for a commit of
        the next."""
        try:
            while self._running:
                self._running -= self._finished(self._running)
            unclaimed, self._unclaimed = self._unclaimed, set()
            for handle in unclaimed:
                self._check(handle)
        finally:
            self.ahead.clear()

    def _check(self, handle) -> None:
        """Raise the error a finished block ended with, if any (its shards are stored)."""
        self._unclaimed.discard(handle)
        self._take("", handle, set())

    def _start(self, stage: str, block: list):
        handle = self._submit(stage, block)
        self._running.add(handle)
        return handle


def _start_worker(parent: int, settings: Settings) -> None:
    """Build this process's Worker. Ctrl-C is the doit process's to handle: it stops the
    pool. If the doit process dies without doing so (killed), the worker ends too instead
    of waiting forever."""
    global _worker
    interrupts.leave_to_parent()
    # One process per core already: the tokenizer's own threads would only contend with
    # the other workers (and spin, burning CPU). Its output is the same either way.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    def end_with_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()
    _worker = Worker(settings, pooled=True)


def _build_block(stage: str, shas: list) -> list:
    return _worker.build_block(stage, shas)


def _write_part(out: Path, name: str, wanted: list) -> tuple:
    return _worker.write_part(out, name, wanted)


_ENDED_ABRUPTLY = (
    "a worker process of the build ended abruptly (killed, or out of memory). Run `doit` "
    "again to resume; if it happens again, give fewer processes with `doit jobs=1` (or "
    "another number) or free some memory.")


def _result(future):
    """A worker's result, or the error it raised; a pool whose worker died says so."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise PipelineError(_ENDED_ABRUPTLY) from None


class Pool(BlockPool):
    """Worker processes for one stage of a run."""

    workers_store_shards = True

    def __init__(self, settings: Settings, size: int):
        super().__init__()
        # spawn, not fork: the doit process holds a sqlite connection, git pipes and the
        # tokenizer trainer's threads, none of which a child may share.
        self.executor = ProcessPoolExecutor(
            max_workers=size, initializer=_start_worker, initargs=(os.getpid(), settings),
            mp_context=multiprocessing.get_context("spawn"))
        self.size = size

    def _submit(self, stage: str, block: list):
        # The futures are not cancelled when the build stops early: the run session then
        # kills the workers, and in Python 3.11 a future cancelled before its pool breaks
        # makes the executor's thread fail with a traceback.
        with interrupts.held():             # submit starts the worker processes
            return self.executor.submit(_build_block, stage, block)

    def _finished(self, futures: set) -> set:
        return wait(futures, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED).done

    def _take(self, stage: str, future, wanted: set) -> list:
        """The commits of wanted the block stored (it may hold those of another task)."""
        return [sha for sha in _result(future) if sha in wanted]

    def write_parts(self, out: Path, jobs: list) -> dict:
        """Write the merge's parts of jobs ((name, its commits) each: see Worker.write_part)
        into out, one part per task, the workers taking the next as they finish; returns
        part name -> (key, record)."""
        with interrupts.held():
            futures = {name: self.executor.submit(_write_part, out, name, wanted)
                       for name, wanted in jobs}
        return {name: _result(future) for name, future in futures.items()}

    def shutdown(self) -> None:
        """Stop once the blocks being built are done (the stage is over: there are none,
        unless some were started ahead for tasks that did not run; those not started yet
        are dropped), and raise the error a block that its task did not wait for ended with.
        """
        self.executor.shutdown(wait=True, cancel_futures=True)
        for future in list(self._unclaimed):
            if not future.cancelled():    # a cancelled block never started: no error
                self._check(future)

    def terminate(self) -> None:
        """Stop now, killing the workers mid-block: the run is over (Ctrl-C, a failed task)
        and nobody waits for their shards. A shard is written whole or not at all. SIGKILL,
        since a worker still starting holds SIGTERM."""
        # The executor's own processes: Python 3.11 has no public way to end them.
        for process in list((self.executor._processes or {}).values()):
            process.kill()
        self.executor.shutdown(wait=True, cancel_futures=True)
