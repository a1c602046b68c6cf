"""The real `doit` command: bad input gets a paragraph and a non-zero exit, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.git.sample_repo import git

DODO = Path(__file__).resolve().parents[1] / "dodo.py"


def doit(workdir, *args):
    env = {**os.environ, "PIPELINE_CONFIG_DIR": str(workdir)}
    return subprocess.run([sys.executable, "-m", "doit", "-f", str(DODO), "-d", str(workdir),
                           *args], capture_output=True, text=True, env=env, timeout=300)


def test_list_explains_every_task(workdir):
    result = doit(workdir, "list")
    assert result.returncode == 0
    for task in ("commits", "chunks", "tokenizer", "tokens", "merge", "sample_repo",
                 "retrain_tokenizer"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(task + " "))
        assert len(line.split(None, 1)[1]) > 20


@pytest.mark.parametrize("make_repo, expected", [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: (d / "file.txt").write_text("x") and d / "file.txt", "is a file"),
    (lambda d: (d / "plain").mkdir() or d / "plain", "is not a git repository"),
])
def test_a_bad_repo_gets_a_clear_error(workdir, make_repo, expected):
    result = doit(workdir, f"repo={make_repo(workdir)}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output and "Point repo= (or its entry in repos=) at" in output
    assert "Traceback" not in output
    assert not (workdir / "dataset" / "manifest.json").exists()


def test_a_repository_without_rust_or_with_an_unknown_ref(workdir):
    repo = workdir / "docs"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("no rust here\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs")
    no_rust = doit(workdir, f"repo={repo}")
    assert no_rust.returncode != 0 and "no Rust (.rs) file changes" in no_rust.stdout
    unknown = doit(workdir, f"repo={repo}", "ref=nope")
    assert unknown.returncode != 0 and "ref=nope names no commit" in unknown.stdout
    assert "Traceback" not in no_rust.stdout + no_rust.stderr + unknown.stdout + unknown.stderr


@pytest.mark.parametrize("setting, expected", [
    ("colour=blue", "unknown setting 'colour'"),
    ("max_length=lots", "must be int"),
    ("val_ratio=0.95", "leave some commits for training"),
])
def test_a_bad_setting_gets_a_clear_error(workdir, setting, expected):
    result = doit(workdir, setting)
    assert result.returncode != 0
    assert expected in result.stderr and "Traceback" not in result.stderr
