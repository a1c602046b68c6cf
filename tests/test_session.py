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
from pipeline.run.pool import BLOCK, TAIL_BLOCK, blocks, plan
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


def test_blocks_hold_each_commit_once_in_order_and_end_in_small_blocks_when_asked():
    for stage, size in BLOCK.items():
        for count in range(3 * size + 2):
            shas = [f"{number:040x}" for number in range(count)]
            for tail, singles in ((0, 0), (size, TAIL_BLOCK), (2 * size, 2 * TAIL_BLOCK)):
                found = blocks(stage, shas, tail, singles)
                assert [sha for block in found for sha in block] == shas
                starts = [shas.index(block[0]) for block in found]
                for block, start in zip(found, starts):
                    assert 0 < len(block) <= (size if start < count - tail else TAIL_BLOCK)
                    assert len(block) == 1 or start + len(block) <= count - singles
                    assert start >= count - tail or start + len(block) <= count - tail
            assert blocks(stage, shas) == [shas[i:i + size] for i in range(0, count, size)]


def test_a_plan_takes_what_was_built_ahead_and_ends_the_stage_in_small_blocks():
    shas = [f"{number:040x}" for number in range(200)]
    size = BLOCK["chunks"]
    for task, after, ends in ((shas[:64], shas[64:164], False), (shas[:64], shas[64:163], True),
                              (shas[:64], [], True), (shas[:64], shas[64:71], True)):
        ahead = {sha: "a block" for sha in task[:3] + after[:5]}
        mine, own, later = plan("chunks", task, after, dict(ahead), 2, 100)
        assert mine == dict.fromkeys(task[:3], "a block")
        assert [sha for block in own for sha in block] == task[3:]
        assert [sha for block in later for sha in block] == after[5:]
        sizes = [len(block) for block in own + later]
        if not ends:                       # whole blocks, each task's last one shorter
            assert [len(block) for block in own] == [size] * (61 // size) + (
                [61 % size] if 61 % size else [])
            assert max(sizes) == size
        else:
            # The stage's last 2 * size commits (2 workers) in small blocks, its last
            # 2 * TAIL_BLOCK one at a time, wherever they are.
            small = list(itertools.takewhile(lambda n: n <= TAIL_BLOCK, reversed(sizes)))
            assert sum(small) >= min(2 * size, sum(sizes))
            assert sizes[len(sizes) - 2 * TAIL_BLOCK:] == [1] * min(2 * TAIL_BLOCK, sum(sizes))


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
