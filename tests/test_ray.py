"""executor=ray: the same outputs as the local pool (one repository or two, before and after
a pull), a killed Ray worker's block rebuilt, and one clear line when Ray is not installed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import chdir, run_doit, split_outputs
from pipeline.git.sample_repo import extend_sample_repository, git
from pipeline.run import events, ray_pool
from test_repositories import _step, two_repositories
from test_robustness import doit_command

ray = pytest.importorskip("ray")    # a guard: CI installs ".[test,ray]", so these run there


@pytest.fixture(scope="module")
def history(tmp_path_factory, sample_template) -> tuple:
    """The sample with 40 more commits (71: enough for a pool), and its outputs built by
    the local pool: (repo, {file name: bytes}, stats.json without timings)."""
    root = tmp_path_factory.mktemp("ray_history")
    repo = root / "repo"
    git(root, "clone", "-q", str(sample_template), str(repo))
    extend_sample_repository(repo, 40)
    with pytest.MonkeyPatch.context() as patch, chdir(root):
        patch.setenv("PIPELINE_CONFIG_DIR", str(root))
        code, record = run_doit(f"repo={repo}", "executor=local", "jobs=2")
        assert code == 0 and record.processes["chunks"] == 2
    return repo, split_outputs(root / "dataset"), stats_without_timings(root)


def stats_without_timings(root: Path) -> dict:
    stats = json.loads((root / "dataset" / "stats.json").read_text())
    stats.pop("build_seconds_per_stage")
    return stats


def ray_processes() -> dict:
    """pid -> command line of this machine's Ray processes (a Ray worker shows its task,
    `ray::build_block`, or `ray::IDLE`)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if command.startswith("ray::") or "/ray/" in command:
                found[int(entry.name)] = command
    return found


def test_a_ray_build_gives_the_local_pools_outputs_and_leaves_no_ray_process(workdir, history):
    repo, expected, expected_stats = history
    before = set(ray_processes())
    code, record = run_doit(f"repo={repo}", "executor=ray", "jobs=2")
    assert code == 0 and record.processes == {"chunks": 2, "tokens": 2}
    assert split_outputs(workdir / "dataset") == expected
    assert stats_without_timings(workdir) == expected_stats
    assert json.loads((workdir / "dataset" / "manifest.json").read_text())[
        "settings"]["executor"] == "ray"
    # The run session's close shut the local instance down, all of it.
    assert not ray.is_initialized()
    deadline = time.monotonic() + 5
    while set(ray_processes()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(ray_processes()) <= before, ray_processes()


def test_a_killed_ray_worker_has_its_block_built_again(workdir, history):
    repo, expected, expected_stats = history
    killed = []

    def kill_a_busy_worker(stage):
        """At the first chunk shard stored, SIGKILL a Ray worker in the middle of a block."""
        if stage != "chunks" or killed:
            return
        deadline = time.monotonic() + 10
        while not killed and time.monotonic() < deadline:
            for pid, command in ray_processes().items():
                if command.startswith("ray::build_block"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.005)

    events.listen(kill_a_busy_worker)
    try:
        code, record = run_doit(f"repo={repo}", "executor=ray", "jobs=2")
    finally:
        events.stop_listening(kill_a_busy_worker)
    assert killed, "no Ray worker was building a block after the first shard"
    assert code == 0
    shas = git(repo, "rev-list", "HEAD").split()
    assert sorted(record.built_shas["chunks"]) == sorted(shas)   # each stored once
    assert split_outputs(workdir / "dataset") == expected
    assert stats_without_timings(workdir) == expected_stats


def test_executor_ray_without_ray_installed_says_how_to_install_it(workdir, history):
    repo = history[0]
    # Ray hidden from the doit process: a module named ray, first on the path, that fails
    # to import as a missing package does.
    shim = workdir / "no_ray"
    shim.mkdir()
    (shim / "ray.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PIPELINE_CONFIG_DIR": str(workdir),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(doit_command(workdir, f"repo={repo}", "executor=ray"), env=env,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count(ray_pool.INSTALL) == 1, output
    assert "Traceback" not in output
    assert not (workdir / "dataset" / "manifest.json").exists()


def test_an_unknown_executor_stops_with_a_message(workdir):
    result = subprocess.run(doit_command(workdir, "executor=dask"), capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "PIPELINE_CONFIG_DIR": str(workdir)})
    assert result.returncode != 0
    assert "executor='dask' must be local or ray." in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_two_repositories_on_ray_equal_the_local_build_before_and_after_a_pull(workdir):
    alpha, beta = two_repositories(workdir, commits=36)   # 35 and 36: both use the pool
    repos = f"repos={alpha.path},{beta.path}"

    def build(executor: str) -> tuple:
        (workdir / executor).mkdir(exist_ok=True)
        with chdir(workdir / executor):
            code, record = run_doit(repos, f"executor={executor}", "jobs=2")
            assert code == 0
            return record, split_outputs(workdir / executor / "dataset")

    record, on_ray = build("ray")
    assert record.processes == {"chunks": 2, "tokens": 2}
    assert build("local")[1] == on_ray

    # 70 new beta commits: 28 complete its first task of 64 (built in the doit process, as
    # fewer than 32), 42 are the next task's, which Ray builds.
    for number in range(40, 110):
        steps = (beta.path / "src/steps.rs").read_text()
        beta.commit(f"Add beta step {number}", {"src/steps.rs": steps + _step("beta", number)})
    record, on_ray = build("ray")
    assert record.built["chunks"] == record.built["tokens"] == 70
    assert set(record.built_shas["chunks"]) == set(beta.git("rev-list", "-70", "HEAD").split())
    assert record.processes == {"chunks": 2, "tokens": 2}
    assert build("local")[1] == on_ray
