"""Several repositories into one dataset (repos=): one timeline cut at one date, the leakage
guard across them, each row named by its repository, and incremental builds per repository."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from git import Repo

from conftest import RustRepo, run_doit, split_outputs
from pipeline.config import Settings
from pipeline.git.commit_list import repository_name
from pipeline.git.sample_repo import git
from pipeline.loading import jsonl_lines, load_tensors
from test_cli import doit

START = 1_704_067_200          # 2024-01-01T00:00:00Z
SHARED_OLD = "pub fn shared(total: u32) -> u32 {\n    total\n}\n"
SHARED_NEW = "pub fn shared(total: u32) -> u32 {\n    total.saturating_mul(3) + 7\n}\n"


def _step(name: str, number: int) -> str:
    return (f"/// Step {number} of {name}.\npub fn {name}_step_{number}(value: u64) -> u64 {{\n"
            f"    value.wrapping_mul({number + 3}).rotate_left({number % 7})\n}}\n")


def two_repositories(workdir, commits: int = 10) -> tuple[RustRepo, RustRepo]:
    """alpha and beta, their commits interleaved in time (alpha's first). alpha changes
    `shared` early (train); beta makes the very same change in its last commit (test)."""
    alpha, beta = RustRepo(workdir / "alpha"), RustRepo(workdir / "beta")
    alpha.time, beta.time = START, START + 1800
    for repo, name in ((alpha, "alpha"), (beta, "beta")):
        repo.commit(f"Start {name}", {"src/lib.rs": "pub mod shared;\npub mod steps;\n",
                                      "src/shared.rs": SHARED_OLD, "src/steps.rs": ""})
    alpha.commit("Make shared scale its total", {"src/shared.rs": SHARED_NEW})
    beta.commit("Add the first beta step", {"src/steps.rs": _step("beta", 0)})
    for number in range(1, commits - 2):
        for repo, name in ((alpha, "alpha"), (beta, "beta")):
            steps = (repo.path / "src/steps.rs").read_text()
            repo.commit(f"Add {name} step {number}", {"src/steps.rs": steps + _step(name, number)})
    beta.commit("Make shared scale its total", {"src/shared.rs": SHARED_NEW})
    return alpha, beta


def _rows(dataset) -> dict:
    return {split: [json.loads(line) for line in jsonl_lines(dataset, split)]
            for split in ("train", "val", "test")}


def test_two_repositories_make_one_dataset_cut_at_one_date(workdir):
    alpha, beta = two_repositories(workdir)
    code, record = run_doit(f"repos={alpha.path},{beta.path}")
    assert code == 0
    dataset = workdir / "dataset"
    manifest = json.loads((dataset / "manifest.json").read_text())
    stats = json.loads((dataset / "stats.json").read_text())
    assert [entry["name"] for entry in manifest["repositories"]] == ["alpha", "beta"]
    assert record.built["chunks"] == 19          # alpha 9, beta 10

    rows = _rows(dataset)
    # Both repositories train; each row names its repository, in its text too.
    assert {row["repository"] for row in rows["train"]} == {"alpha", "beta"}
    for split, split_rows in rows.items():
        tensors = load_tensors(dataset, split)
        assert tensors["repository"] == [row["repository"] for row in split_rows]
        for row in split_rows:
            assert row["text"].startswith(f"<reponame>{row['repository']}<")
    # One cut for all: every train commit is older than every val one, and so on.
    times = {split: load_tensors(dataset, split)["commit_time"] for split in rows}
    assert times["train"].max() <= times["val"].min() <= times["val"].max() <= times["test"].min()
    # Beta's last commit repeats a change alpha made in train: the guard drops it from test.
    assert stats["skipped"]["leakage_test"] == 1
    assert not any("saturating_mul" in segment["new_code"]
                   for row in rows["test"] for segment in row["segments"])
    assert any("saturating_mul" in segment["new_code"]
               for row in rows["train"] for segment in row["segments"])
    # Per-repository counts add up to the splits'.
    for split in rows:
        assert sum(stats["repositories"][name][split]["commits"] for name in ("alpha", "beta")) \
            == manifest["splits"][split]["commits"]
    # Test holds beta's last two commits: a new step, and the repeated change, dropped.
    beta_test = stats["repositories"]["beta"]["test"]
    assert (beta_test["commits"], beta_test["chunks"]) == (2, 1)
    assert stats["repositories"]["alpha"]["test"]["commits"] == 0
    assert isinstance(manifest["tokenizer"]["trained_on_commit"], dict)


def test_pulling_one_repository_builds_its_new_commits_alone_and_equals_a_clean_build(workdir):
    alpha, beta = two_repositories(workdir)
    # Cut by date, so the train period (and the tokenizer trained on it) stays put.
    args = [f"repos={alpha.path},{beta.path}", "val_from=2024-01-01T08:00:00",
            "test_from=2024-01-01T09:00:00"]
    assert run_doit(*args)[0] == 0
    for number in (20, 21):
        steps = (beta.path / "src/steps.rs").read_text()
        beta.commit(f"Add beta step {number}", {"src/steps.rs": steps + _step("beta", number)})
    code, record = run_doit(*args)
    assert code == 0
    assert record.built["chunks"] == record.built["tokens"] == 2
    assert set(record.built_shas["chunks"]) == set(beta.git("rev-list", "-2", "HEAD").split())
    incremental = split_outputs(workdir / "dataset")

    shutil.rmtree(workdir / "cache")
    shutil.rmtree(workdir / "dataset")
    assert run_doit(*args)[0] == 0
    assert split_outputs(workdir / "dataset") == incremental


def test_adding_a_repository_builds_only_its_commits(workdir):
    alpha, beta = two_repositories(workdir)
    assert run_doit(f"repo={alpha.path}")[0] == 0
    # A given tokenizer: a trained one would be trained anew on both repositories' code.
    shutil.copyfile(workdir / "dataset" / "tokenizer.json", workdir / "tokenizer.json")
    given = f"tokenizer={workdir / 'tokenizer.json'}"
    assert run_doit(f"repo={alpha.path}", given)[0] == 0
    code, record = run_doit(f"repos={alpha.path},{beta.path}", given)
    assert code == 0
    assert record.built["chunks"] == record.built["tokens"] == 10
    assert set(record.built_shas["chunks"]) == set(beta.git("rev-list", "HEAD").split())
    assert len(load_tensors(workdir / "dataset", "train")["input_ids"]) > 0
    assert torch.equal(load_tensors(workdir / "dataset", "train")["commit_time"].sort().values,
                       load_tensors(workdir / "dataset", "train")["commit_time"])


def test_repository_settings_mistakes_get_a_clear_error(workdir):
    alpha, beta = two_repositories(workdir, commits=4)
    both = doit(workdir, f"repo={alpha.path}", f"repos={beta.path}")
    assert both.returncode != 0 and "not both" in both.stderr
    twin = RustRepo(workdir / "other" / "alpha")
    twin.commit("Start", {"src/lib.rs": "pub fn twin() {}\n"})
    same_name = doit(workdir, f"repos={alpha.path},{twin.path}")
    assert same_name.returncode != 0 and "are all named 'alpha'" in same_name.stdout
    missing = doit(workdir, f"repos={alpha.path},{workdir / 'nowhere'}")
    assert missing.returncode != 0 and "does not exist" in missing.stdout
    for result in (both, same_name, missing):
        assert "Traceback" not in result.stdout + result.stderr


def test_a_fork_and_its_upstream_share_their_common_commits_once(workdir):
    alpha, _ = two_repositories(workdir)
    fork = RustRepo.__new__(RustRepo)        # a clone, then commits of its own
    fork.path, fork.time = workdir / "fork", alpha.time
    git(workdir, "clone", "-q", str(alpha.path), str(fork.path))
    for number in range(30, 33):
        steps = (fork.path / "src/steps.rs").read_text()
        fork.commit(f"Add fork step {number}", {"src/steps.rs": steps + _step("fork", number)})
    code, record = run_doit(f"repos={alpha.path},{fork.path}")
    assert code == 0
    shared = alpha.git("rev-list", "HEAD").split()
    assert record.built["chunks"] == len(shared) + 3      # each shared commit built once
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    upstream, forked = manifest["repositories"]
    assert forked["commits_shared_with_an_earlier_repository"] == len(shared)
    assert upstream["commits_shared_with_an_earlier_repository"] == 0
    assert sum(split["commits"] for split in manifest["splits"].values()) == len(shared) + 3
    rows = [row for split_rows in _rows(workdir / "dataset").values() for row in split_rows]
    assert {row["repository"] for row in rows if row["commit"] in shared} == {"alpha"}


@pytest.mark.parametrize("url, name", [
    ("https://github.com/BurntSushi/ripgrep.git", "BurntSushi/ripgrep"),
    ("git@github.com:rust-lang/cargo.git", "rust-lang/cargo"),
    ("ssh://git@host.example/team/tool/", "team/tool"),
    ("/mirrors/BurntSushi+ripgrep/repo", "checkout"),
    ("file:///mirrors/owner/name.git", "checkout"),
    ("../upstream/name", "checkout")])
def test_rows_are_named_by_a_hosted_remotes_owner_and_name_else_the_directory(tmp_path, url,
                                                                              name):
    repo = Repo.init(tmp_path / "checkout")
    repo.create_remote("origin", url)
    assert repository_name(Settings(repo=str(tmp_path / "checkout")), repo) == name
