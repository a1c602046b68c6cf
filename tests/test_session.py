"""The run session: however a run ends, its lock is released and its workers are gone."""

from __future__ import annotations

import fcntl
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import chdir, run_doit, split_outputs
from pipeline.git.sample_repo import commit_count, extend_sample_repository, git
from pipeline.run import events
from pipeline.errors import PipelineError
from pipeline.run.pool import BLOCK, TAIL_BLOCK, BlockPool, blocks, plan
from test_robustness import children, doit_command, tensors


def child_commands() -> list:
    """The command lines of this process's children (multiprocessing's resource tracker,
    which lives as long as the test process, aside)."""
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                for pid in children(os.getpid())]
    return [command for command in commands if "resource_tracker" not in command]


def lock_is_free(cache: Path) -> bool:
    """Whether another open file description can take the cache lock right now."""
    with open(cache / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def reference_build(workdir: Path, repo: Path) -> dict:
    reference = workdir / "reference"
    reference.mkdir()
    with chdir(reference):
        assert run_doit(f"repo={repo}")[0] == 0
    return tensors(reference)


def test_ctrl_c_in_the_chunks_stage_releases_the_lock_and_stops_the_workers(
        workdir, sample_repo):
    extend_sample_repository(sample_repo, 40)          # enough commits for a worker pool
    expected = reference_build(workdir, sample_repo)

    def interrupt_on_first_commit(stage):
        if stage == "chunks":
            events.stop_listening(interrupt_on_first_commit)
            os.kill(os.getpid(), signal.SIGINT)          # a real Ctrl-C, mid-stage

    events.listen(interrupt_on_first_commit)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_doit(f"repo={sample_repo}")
    finally:
        events.stop_listening(interrupt_on_first_commit)
    assert events.RUN.processes.get("chunks", 1) > 1, "the chunks stage used no worker pool"
    assert 0 < len(events.RUN.built_shas["chunks"]) < 71
    assert lock_is_free(workdir / "cache")
    assert multiprocessing.active_children() == [] and child_commands() == []

    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0 and "merge" in record.executed
    assert tensors(workdir) == expected


def test_sigint_to_a_doit_command_leaves_no_process_behind(workdir, sample_repo):
    extend_sample_repository(sample_repo, 40)
    expected = reference_build(workdir, sample_repo)
    target = workdir / "interrupted"
    target.mkdir()
    env = {**os.environ, "PIPELINE_CONFIG_DIR": str(target)}
    process = subprocess.Popen(doit_command(target, f"repo={sample_repo}"), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while (process.poll() is None and time.monotonic() < deadline
           and len(list((target / "cache" / "chunks").rglob("*.msgpack"))) < 4):
        time.sleep(0.01)
    assert process.poll() is None, "the build finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)               # what Ctrl-C in a terminal sends
    process.wait(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)                   # anyone left in its group?
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker or git processes outlived the interrupted doit")
    assert not (target / "dataset" / "manifest.json").exists()
    result = subprocess.run(doit_command(target, f"repo={sample_repo}"), env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((target / "dataset" / "manifest.json").read_text())
    assert split_outputs(target / "dataset") == expected


def test_blocks_hold_each_commit_once_in_order_and_shrink_at_the_stages_end():
    for stage, size in BLOCK.items():
        for count in [*range(0, 3 * TAIL_BLOCK + 3), size - 1, size, 3 * size + 2, 9 * size]:
            shas = [f"{number:040x}" for number in range(count)]
            assert blocks(stage, shas) == [shas[i:i + size] for i in range(0, count, size)]
            for workers, behind in ((1, 0), (2, 0), (2, 5), (3, 2 * size)):
                found = blocks(stage, shas, workers, behind)
                assert [sha for block in found for sha in block] == shas
                singles = workers * TAIL_BLOCK
                start = 0
                for block in found:
                    left = count + behind - start
                    # Never more than a worker's share of what is left, nor than
                    # TAIL_BLOCK past that; the last TAIL_BLOCK per worker one at a time.
                    assert 0 < len(block) <= min(size, max(TAIL_BLOCK, -(-left // workers)))
                    assert len(block) == 1 or start + len(block) <= count + behind - singles
                    assert len(block) == 1 or left > singles
                    start += len(block)
                sizes = [len(block) for block in found]
                assert sizes == sorted(sizes, reverse=True)
                if count + behind >= workers * (size + TAIL_BLOCK):     # whole while many left
                    assert sizes[0] == size


def test_a_plan_takes_what_was_built_ahead_and_ends_the_stage_in_shrinking_blocks():
    shas = [f"{number:040x}" for number in range(5000)]
    size = BLOCK["chunks"]
    lookahead = 2 * 2 * size
    for task, after, ends in ((shas[:64], shas[64:64 + lookahead], False),
                              (shas[:64], shas[64:64 + lookahead - 1], True),
                              (shas[:64], [], True), (shas[:64], shas[64:71], True)):
        ahead = {sha: "a block" for sha in task[:3] + after[:5]}
        mine, own, later = plan("chunks", task, after, dict(ahead), 2, lookahead)
        assert mine == dict.fromkeys(task[:3], "a block")
        assert [sha for block in own for sha in block] == task[3:]
        assert [sha for block in later for sha in block] == after[5:]
        sizes = [len(block) for block in own + later]
        if not ends:                       # whole blocks: the task's, then the next ones'
            assert [len(block) for block in own] == [61]
            assert max(sizes) == size and sizes[1:-1] == [size] * (len(sizes) - 2)
        else:
            # Shrinking to the stage's end; its last 2 * TAIL_BLOCK one at a time.
            assert sizes[1:] == sorted(sizes[1:], reverse=True)
            assert sizes[len(sizes) - 2 * TAIL_BLOCK:] == [1] * min(2 * TAIL_BLOCK, sum(sizes))
            assert max(sizes[1:], default=0) <= -(-sum(sizes) // 2)


class StepPool(BlockPool):
    """BlockPool's scheduling over workers simulated in steps, as a local pool's store
    shards: at each wait every running block stores its next commit's shard, and returns
    one step after its last (a block ends by storing definitions or summaries), failing
    then if told to."""

    size = 2
    workers_store_shards = True

    def __init__(self, failing: int | None = None):
        super().__init__()
        self.blocks, self.steps, self.stored = [], [], set()
        self.failing = failing                   # the block that fails after its shards

    def _submit(self, stage, block):
        self.blocks.append(block)
        self.steps.append(0)
        return len(self.blocks) - 1

    def _finished(self, handles):
        for handle in self._running:
            if self.steps[handle] < len(self.blocks[handle]):
                self.stored.add(self.blocks[handle][self.steps[handle]])
            self.steps[handle] += 1
        return {handle for handle in handles if self.steps[handle] > len(self.blocks[handle])}

    def _take(self, stage, handle, wanted):
        if handle == self.failing:
            raise PipelineError("the block failed after storing its shards")
        return [sha for sha in self.blocks[handle] if sha in wanted]


def build_stage(pool: StepPool, shas: list) -> None:
    """Run the stage's tasks of 64 commits in order, each given the next ones to build
    ahead, as the run session does."""
    for start in range(0, len(shas), 64):
        task = shas[start:start + 64]
        after = shas[start + 64:start + 64 + pool.lookahead("chunks")]
        built = list(pool.build("chunks", task, after, pool.stored.__contains__))
        assert sorted(built) == sorted(task) and set(task) <= pool.stored
        if start == 64:
            # The second task's commits lie in a large block started ahead: the task ended
            # as they were stored, while the block goes on with the next tasks' commits.
            block = pool.blocks[1]
            assert len(block) > 3 * len(task) and set(task) < set(block)
            assert pool.steps[1] < len(block)
    pool.finish_stage()


def test_a_task_ends_once_its_shards_are_stored_and_a_late_blocks_error_still_surfaces():
    shas = [f"{number:040x}" for number in range(4000)]
    pool = StepPool()
    build_stage(pool, shas)
    assert pool.stored == set(shas) and not pool.ahead
    blocks_built = len(pool.blocks)
    # Whichever block fails after storing its shards, its error is raised: by the task
    # that takes it, or once it returns after its tasks ended.
    for failing in range(blocks_built):
        with pytest.raises(PipelineError, match="failed after storing"):
            build_stage(StepPool(failing), shas)


def test_a_pool_builds_each_commit_once_with_the_next_task_built_ahead(workdir, sample_repo):
    """Two tasks in a pool: the second's first commits are built ahead, during the first,
    and stored, counted and used once, like the rest (then given one at a time). The
    chunks stage's workers go on with the tokens stage, then pack the merge's rows."""
    extend_sample_repository(sample_repo, 80)          # 111 commits: tasks of 64 and 47
    shas = git(sample_repo, "rev-list", "HEAD").split()
    assert len(shas) == commit_count(sample_repo) > 64 + 2 * BLOCK["tokens"]
    code, record = run_doit(f"repo={sample_repo}", "jobs=2")
    assert code == 0 and record.processes == {"chunks": 2, "tokens": 2, "merge": 2}
    assert record.pools_started == ["chunks"]         # its workers did all three
    for stage in ("chunks", "tokens"):
        assert sorted(record.built_shas[stage]) == sorted(shas), stage
    one_process = workdir / "one_process"
    one_process.mkdir()
    with chdir(one_process):
        code, record = run_doit(f"repo={sample_repo}", "jobs=1")
        assert code == 0 and record.processes == {"chunks": 1, "tokens": 1}
    assert tensors(one_process) == tensors(workdir)
