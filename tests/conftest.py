"""Fixtures: a working directory per test, real git repositories, in-process doit runs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain

import dodo
from pipeline.git.commit_list import build_commit_list
from pipeline.git.sample_repo import generate_sample_repository, git
from pipeline.records import to_plain
from pipeline.run import events
from pipeline.run.worker import Worker


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty directory the test runs in, with no pipeline.toml to leak in settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPELINE_CONFIG_DIR", str(tmp_path))
    yield tmp_path
    dodo.SESSION.close()


def run_doit(*args: str) -> tuple[int, events.RunRecord]:
    """Run doit in-process on the project's dodo.py; (exit code, record of the run)."""
    code = DoitMain(ModuleTaskLoader(dodo)).run(list(args))
    return code or 0, events.RUN  # some doit commands return None for success


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory) -> Path:
    """The sample repository, generated once per test session; copy it before changing it."""
    path = tmp_path_factory.mktemp("template") / "repo"
    generate_sample_repository(path)
    return path


@pytest.fixture
def sample_repo(workdir, sample_template) -> Path:
    """A private clone of the sample repository (same commits) for this test to extend."""
    path = workdir / "repo"
    git(workdir, "clone", "-q", str(sample_template), str(path))
    return path


class RustRepo:
    """A git repository in a temporary directory to write Rust files and commit them."""

    def __init__(self, path: Path):
        self.path = path
        self.time = 1_700_000_000
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")

    def commit(self, message: str, files: dict) -> str:
        """Write files (None deletes) and commit; returns the new commit's sha."""
        for name, text in files.items():
            target = self.path / name
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(text if isinstance(text, bytes) else text.encode())
        self.time += 3600
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message, time=self.time)
        return git(self.path, "rev-parse", "HEAD").strip()

    def git(self, *args: str) -> str:
        self.time += 3600
        return git(self.path, *args, time=self.time)


@pytest.fixture
def rust_repo(workdir) -> RustRepo:
    return RustRepo(workdir / "rust_repo")


@contextlib.contextmanager
def chdir(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def build_chunk_shard(config, sha) -> dict:
    """List config's commits and build the chunk shard of sha, as the chunks task does;
    returns the shard as it is stored."""
    worker = Worker(config)
    try:
        build_commit_list(config, worker.repo)
        return to_plain(worker.build("chunks", sha))
    finally:
        worker.close()


def split_outputs(dataset: Path) -> dict:
    """Every part file of the three splits (tensors and jsonl), by name: what a build
    writes for a trainer, compared byte for byte between builds."""
    files = {path.name: path.read_bytes() for split in ("train", "val", "test")
             for pattern in (f"{split}-*.pt", f"{split}-*.jsonl")
             for path in sorted(Path(dataset).glob(pattern))}
    assert {name.split("-")[0] for name in files} == {"train", "val", "test"}, sorted(files)
    return files
