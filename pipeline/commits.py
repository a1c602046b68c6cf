"""Settings in, the stored commit list of the ref out (the `commits` task), and its readers.

The list is stored under the ref's commit sha, so a `doit` with no new commits only
resolves the ref and finds the list already there.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline import cache
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.git_history import BlobReader, Commit, list_commits, open_repository, resolve_ref

# Bump when the stored commit list changes shape.
COMMITS_VERSION = 2
_sessions: dict = {}
_lists: dict = {}


def repository_path(settings: Settings) -> str:
    return settings.repo or str(settings.cache / "sample_repo")


def git_session(settings: Settings):
    """(repo, blob reader) for this process: one persistent `git cat-file` per repository.

    Keyed by the directory's inode too, so a repository regenerated at the same path (the
    sample after `doit clean`) gets a fresh reader instead of one bound to the old one.
    """
    path = repository_path(settings)
    try:
        key = (path, os.stat(os.path.expanduser(path)).st_ino)
    except OSError:
        key = (path, None)
    if key not in _sessions:
        repo = open_repository(path)
        _sessions[key] = (repo, BlobReader(repo))
    return _sessions[key]


def close_sessions() -> None:
    for repo, reader in _sessions.values():
        reader.close()
    _sessions.clear()


def pointer_path(settings: Settings) -> Path:
    """Names the commit list of the current run; written last by the commits task."""
    return settings.cache / "commits" / "current.msgpack"


def list_path(settings: Settings, head: str) -> Path:
    key = cache.content_key([repository_path(settings), head, COMMITS_VERSION])
    return cache.record_path(settings.cache, "commits", key)


def shallow_boundary(repo) -> list:
    """The commits a shallow clone's history starts at (git lists them in .git/shallow)."""
    shallow = Path(repo.git_dir) / "shallow"
    return shallow.read_text().split() if shallow.is_file() else []


def build_commit_list(settings: Settings) -> dict:
    """Resolve the ref, list its history unless already stored, and point the run at it."""
    repo, _ = git_session(settings)
    head = resolve_ref(repo, settings.ref)
    path = list_path(settings, head)
    stored = cache.read_record(path)
    if stored is None:
        commits = list_commits(repo, head)
        if not any(commit.changes for commit in commits):
            raise PipelineError(
                f"repo={repository_path(settings)} has no Rust (.rs) file changes in the "
                f"history of {settings.ref}. Point repo= at a repository with Rust code, or "
                "ref= at a branch that has some.")
        stored = {"repo": repository_path(settings), "ref": settings.ref, "head": head,
                  "shallow": shallow_boundary(repo),
                  "commits": [commit.as_dict() for commit in commits]}
        cache.write_record(path, stored)
    cache.write_record(pointer_path(settings), {"list": str(path), "head": head})
    return stored


def current_commit_list(settings: Settings) -> dict:
    """The commit list the last commits task pointed at (memoised per process)."""
    pointer = cache.read_record(pointer_path(settings))
    if pointer is None:
        raise PipelineError("the commit list is missing; run `doit` (it lists commits first).")
    if pointer["list"] not in _lists:
        stored = cache.read_record(Path(pointer["list"]))
        if stored is None:
            raise PipelineError("the stored commit list is damaged; run `doit` again to rebuild it.")
        stored["by_sha"] = {c["sha"]: Commit.from_dict(c) for c in stored["commits"]}
        _lists.clear()
        _lists[pointer["list"]] = stored
    return _lists[pointer["list"]]
