"""Settings and a repository in, the stored commit list of the ref out (the `commits` task).

The list is stored under the ref's commit sha, so a `doit` with no new commits only
resolves the ref and finds the list already there; after a pull, the last list is
extended with the new commits alone. A pointer names the list of the
current run; later stages read that one. For a partial clone, the list also names the
blobs the build reads that the clone lacks (pipeline.git.partial), so no later stage asks
git for them.
"""

from __future__ import annotations

import re
from pathlib import Path

import git

from pipeline import store
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.git.history import (in_temporal_order, list_commits, read_commits, resolve_ref,
                                  topological_order)
from pipeline.git.partial import make_blobs_local

# Bump when the stored commit list changes shape.
COMMITS_VERSION = 3
# New commits read alone when a list is extended; more than this and the history is listed
# whole (one git log beats thousands of arguments).
EXTEND_AT_MOST = 1000
# `owner/name` at the end of a remote URL (https, ssh or scp-like; `.git` optional).
_OWNER_NAME = re.compile(r"[/:](?P<owner>[^/:]+)/(?P<name>[^/]+?)(?:\.git)?/?$")
# A URL of a hosted remote: `scheme://host/..` (not file://), or scp-like `host:path`. A
# clone of a local path has no owner: `/mirrors/a+b/repo` would name its rows `a+b/repo`.
_HOSTED = re.compile(r"^(?!file://)[a-z][a-z0-9+.-]*://|^[^/:]+:(?!/)", re.IGNORECASE)


def list_path(settings: Settings, head: str) -> Path:
    key = store.content_key([settings.repository, head, COMMITS_VERSION])
    return store.record_path(settings.cache, "commits", key)


def pointer_path(settings: Settings) -> Path:
    """The record naming the repository's current commit list: one per repository, so
    that the repositories of one dataset (repos=) share a cache."""
    key = store.content_key(["current list", settings.repository])
    return settings.cache / "commits" / f"current-{key}.msgpack"


def shallow_boundary(repo) -> list:
    """The commits a shallow clone's history starts at (git lists them in .git/shallow)."""
    shallow = Path(repo.common_dir) / "shallow"       # a linked worktree's is the main one's
    return shallow.read_text().split() if shallow.is_file() else []


def build_commit_list(settings: Settings, repo) -> dict:
    """Resolve the ref, list its history unless already stored, and point the run at it;
    returns the list as read_commit_list reads it (so the run need not read it again)."""
    head = resolve_ref(repo, settings.ref)
    path = list_path(settings, head)
    stored = store.read_record(path)
    if stored is None:
        missing, why = make_blobs_local(repo, head)       # None, None: a complete repository
        commits = _extended_list(settings, repo, head) if missing is None else None
        if commits is None:
            commits = [commit.as_dict() for commit in list_commits(repo, head, missing)]
        if not any(commit["changes"] for commit in commits):
            raise PipelineError(
                f"the repository {settings.repository} has no Rust (.rs) file changes in the "
                f"history of {settings.ref}. Point repo= (or its entry in repos=) at a "
                "repository with Rust code, or ref= at a branch that has some.")
        stored = {"repo": settings.repository, "ref": settings.ref, "head": head,
                  "shallow": shallow_boundary(repo),
                  "partial": missing is not None, "missing": sorted(missing or ()),
                  "fetch_error": why,
                  "commits": commits}
        store.write_record(path, stored)
        stored = store.read_record(path)      # as stored: lists, where it was made with tuples
        if stored is None:
            raise PipelineError(f"the commit list just written to {path} cannot be read back; "
                                "check the disk and run `doit` again.")
    name = repository_name(settings, repo)
    store.write_record(pointer_path(settings), {"list": str(path), "head": head, "name": name})
    return {**stored, "name": name}


def _extended_list(settings: Settings, repo, head: str) -> list | None:
    """The commits (plain, as stored) of head's history made from the last run's list and
    the commits it lacks, read alone: the list a full listing gives (same walk, same
    order), without diffing the whole history again after a pull. None when there is no
    earlier list of this repository, the clone is shallow, or too much is new."""
    try:
        previous = current_commit_list(settings)
    except PipelineError:
        return None
    if (previous["repo"] != settings.repository or previous["partial"] or previous["shallow"]
            or shallow_boundary(repo)):
        return None
    order = topological_order(repo, head)
    known = {commit["sha"]: commit for commit in previous["commits"]}
    new = [sha for sha in order if sha not in known]
    if len(new) > EXTEND_AT_MOST:
        return None
    # Kept plain: tens of thousands of commits made into Commits and back cost a second.
    commits = ([known[sha] for sha in order if sha in known]
               + [commit.as_dict() for commit in read_commits(repo, new)])
    return in_temporal_order(commits, order, plain=True)


def repository_name(settings: Settings, repo) -> str:
    """The name rows carry: repo_name=, else `owner/name` of the origin remote, else the
    directory's name; so two clones of one repository give the same rows."""
    if settings.repo_name:
        return settings.repo_name
    try:
        url = repo.git.config("--get", "remote.origin.url").strip()
    except git.GitCommandError:
        url = ""
    match = _OWNER_NAME.search(url) if _HOSTED.match(url) else None
    if match:
        return f"{match['owner']}/{match['name']}"
    directory = Path(repo.working_tree_dir or repo.git_dir).resolve()
    return directory.name.removesuffix(".git") if directory.name != ".git" else \
        directory.parent.name


def current_pointer(settings: Settings) -> dict:
    """What the last commits task pointed the run at: the list's path, head and name."""
    pointer = store.read_record(pointer_path(settings))
    if pointer is None or "name" not in pointer:
        raise PipelineError("the commit list is missing; run `doit` (it lists commits first).")
    return pointer


def read_commit_list(pointer: dict) -> dict:
    """The stored commit list a pointer names, with its repository `name`."""
    stored = store.read_record(Path(pointer["list"]))
    if stored is None:
        raise PipelineError("the stored commit list is damaged; run `doit` again to rebuild it.")
    stored["name"] = pointer["name"]
    return stored


def current_commit_list(settings: Settings) -> dict:
    """The commit list the last commits task pointed at."""
    return read_commit_list(current_pointer(settings))
