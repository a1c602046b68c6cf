"""git arguments in, git's output out, or one paragraph saying what failed and what to do.

Every git command the pipeline runs goes through `run_git`, so a failure reaches the user
the same way: the command, git's own error lines (never its output, which for `git log`
is the whole history) and what to do next.
"""

from __future__ import annotations

import os
import shlex

import git
import pygit2

from pipeline.errors import PipelineError

# git's own error lines shown at most: a failed lazy fetch alone writes five.
_ERROR_LINES = 6
# Bounds on how long git waits on a stalled HTTP(S) remote (a partial clone's lazy fetch):
# below 1 KB/s for 30 s is given up. Unset, curl waits as long as the server keeps the
# connection open. A value the user set in the environment wins.
NETWORK_LIMITS = {"GIT_HTTP_LOW_SPEED_LIMIT": "1000", "GIT_HTTP_LOW_SPEED_TIME": "30"}


def network_limits() -> dict:
    """The NETWORK_LIMITS the environment does not already set."""
    return {name: value for name, value in NETWORK_LIMITS.items() if name not in os.environ}


# Bounds on the memory of each long-lived `git cat-file` (one per worker process): the pack
# windows it keeps mapped and its cache of delta bases. git's defaults (1 GiB windows, a
# 96 MiB cache) let each grow to 150 MB on a 400 MB history; these keep them near 90 MB.
# The windows cost no speed; the delta cache does below 64 MiB: at 16 MiB, reading the
# generated history's tree for the tokenizer took 2.0 s instead of 1.3 s, and full builds
# were 6-10 % slower. Given as GIT_CONFIG_COUNT entries (git 2.31+), unless the user's
# environment sets its own.
MEMORY_LIMITS = {"core.packedGitWindowSize": "8m", "core.packedGitLimit": "32m",
                 "core.deltaBaseCacheLimit": "64m"}


# The same bounds on libgit2 (pygit2), which compares trees in each worker process; and on
# its cache of parsed objects (trees, commits), 256 MiB by default.
LIBGIT2_WINDOW_BYTES, LIBGIT2_MAPPED_BYTES, LIBGIT2_CACHE_BYTES = 8 << 20, 32 << 20, 32 << 20


def limit_libgit2_memory() -> None:
    """Apply the libgit2 bounds to this process (they are process-wide)."""
    pygit2.settings.mwindow_size = LIBGIT2_WINDOW_BYTES
    pygit2.settings.mwindow_mapped_limit = LIBGIT2_MAPPED_BYTES
    pygit2.settings.cache_max_size(LIBGIT2_CACHE_BYTES)


def memory_limits() -> dict:
    """The environment that gives git MEMORY_LIMITS as configuration."""
    if "GIT_CONFIG_COUNT" in os.environ:
        return {}
    environment = {"GIT_CONFIG_COUNT": str(len(MEMORY_LIMITS))}
    for number, (key, value) in enumerate(MEMORY_LIMITS.items()):
        environment[f"GIT_CONFIG_KEY_{number}"] = key
        environment[f"GIT_CONFIG_VALUE_{number}"] = value
    return environment


def error_lines(stderr: str) -> str:
    """git's error lines in one line: `fatal:` and `error:` lines if any, else the last few."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    marked = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return "; ".join((marked or lines)[-_ERROR_LINES:]) or "no message"


def git_failure(repo: git.Repo, args: list, why: str) -> PipelineError:
    where = repo.working_tree_dir or repo.git_dir
    command = shlex.join(["git", "-C", str(where), *args])
    return PipelineError(
        f"git failed in repo={where}: `{command}` said \"{why}\". Check that this command works "
        "in the repository (`git fsck` finds damaged objects; a partial clone needs its "
        "remote), fix what git names, then run `doit` again.")


def run_git(repo: git.Repo, args: list) -> bytes:
    """git's stdout for args in repo, or a PipelineError naming the command and git's error."""
    try:
        status, output, stderr = repo.git.execute(
            ["git", *args], with_extended_output=True, with_exceptions=False,
            stdout_as_string=False)
    except git.GitCommandNotFound as error:
        raise PipelineError(f"git could not be run ({error.stderr.strip() or error}). Install "
                            "git and make sure it is on PATH, then run `doit` again.") from None
    if status != 0:
        raise git_failure(repo, args, error_lines(stderr))
    return output
