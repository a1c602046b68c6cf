"""A git repository in, its history (commits and their changed Rust files) and blob bytes out.

One `git log --raw -z` lists the whole history with its changes, and blobs come through
GitPython's persistent `git cat-file --batch` process: one process per run instead of one
per commit. Paths and messages are read as bytes, because a diff parser that decodes
text loses non-UTF-8 paths without an error.
"""

from __future__ import annotations

from pathlib import Path

import git

from pipeline.errors import PipelineError
from pipeline.records import Commit, FileChange
from pipeline.text import decode

RUST_SUFFIX = b".rs"
_LOG_FORMAT = "%x01%H%x00%P%x00%at%x00%ct%x00%an%x00%B%x00"


def _repository_error(path: str, why: str) -> PipelineError:
    return PipelineError(
        f"repo={path} {why}. Point repo= at the working tree of a git repository that holds "
        "Rust (.rs) files, e.g. `doit repo=~/projects/the-block`, or set repo in pipeline.toml "
        "(see README.md); leave repo unset to build the generated sample repository.")


def open_repository(path: str) -> git.Repo:
    """A GitPython Repo for path, or a PipelineError that says what is wrong and what to do."""
    location = Path(path).expanduser()
    if not location.exists():
        raise _repository_error(path, "does not exist")
    if not location.is_dir():
        raise _repository_error(path, "is a file, not a directory")
    try:
        return git.Repo(location, odbt=git.GitCmdObjectDB)
    except git.InvalidGitRepositoryError:
        raise _repository_error(path, "is not a git repository") from None
    except git.GitError as error:
        raise _repository_error(path, f"could not be opened by git ({error})") from None


def resolve_ref(repo: git.Repo, ref: str) -> str:
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except git.GitCommandError:
        raise PipelineError(
            f"ref={ref} names no commit in {repo.working_dir}. Use a branch, tag or commit "
            "that `git -C REPO log REF` accepts (default: HEAD); an empty repository has no "
            "commits to read yet.") from None


def _is_rust(path: bytes) -> bool:
    return path.endswith(RUST_SUFFIX)


def _parse_raw(tokens: list, i: int) -> tuple[list, int]:
    """Rust FileChanges of raw diff entries from tokens[i] up to the next commit header."""
    changes = []
    while i < len(tokens) and not tokens[i].lstrip(b"\n").startswith(b"\x01"):
        meta = tokens[i].lstrip(b"\n")
        if not meta.startswith(b":"):
            i += 1
            continue
        old_mode, new_mode, old_blob, new_blob, status = meta[1:].decode().split(" ")
        letter = status[0]
        if letter in "RC":
            old_path, new_path = tokens[i + 1], tokens[i + 2]
            i += 3
        else:
            old_path = new_path = tokens[i + 1]
            i += 2
        if _is_rust(old_path) or _is_rust(new_path):
            changes.append(FileChange(letter, old_mode, new_mode, old_blob, new_blob,
                                      decode(old_path), decode(new_path)))
    return changes, i


def _parse_log(data: bytes) -> list[Commit]:
    """Parse `git log --format=_LOG_FORMAT --raw -z` output, positionally, token by token."""
    tokens = data.split(b"\0")
    commits = []
    i = 0
    while i < len(tokens):
        token = tokens[i].lstrip(b"\n")
        if not token.startswith(b"\x01"):
            i += 1
            continue
        sha = token[1:].decode()
        parents = tuple(tokens[i + 1].decode().split())
        author_time, committer_time = int(tokens[i + 2]), int(tokens[i + 3])
        author = decode(tokens[i + 4])
        message = decode(tokens[i + 5])
        i += 6
        changes, i = _parse_raw(tokens, i)
        commits.append(Commit(sha, parents, author_time, committer_time, author, message,
                              tuple(changes)))
    return commits


def list_commits(repo: git.Repo, head: str) -> list[Commit]:
    """Every commit reachable from head in temporal order: committer time, ties topological."""
    output = repo.git.execute(
        ["git", "-c", "core.quotePath=false", "log", f"--format={_LOG_FORMAT}", "--raw", "-z",
         "-M", "--no-abbrev", "--topo-order", "--reverse", head],
        stdout_as_string=False)
    commits = _parse_log(output)
    topological = {commit.sha: index for index, commit in enumerate(commits)}
    return sorted(commits, key=lambda c: (c.committer_time, topological[c.sha]))


def list_tree(repo: git.Repo, commit: str, suffixes: tuple) -> dict:
    """path -> blob sha of the files in commit's tree whose names end in suffixes
    (symlinks and submodules left out)."""
    output = repo.git.execute(["git", "ls-tree", "-r", "-z", commit], stdout_as_string=False)
    tree = {}
    for entry in output.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, kind, blob = meta.split(b" ")
        if kind == b"blob" and mode != b"120000" and path.endswith(suffixes):
            tree[decode(path)] = blob.decode()
    return tree


def tree_changes(repo: git.Repo, old: str, new: str, suffixes: tuple) -> dict:
    """path -> blob sha (None: gone) of the files whose names end in suffixes that differ
    between two commits' trees, as list_tree would see them (symlinks, submodules: gone)."""
    output = repo.git.execute(["git", "diff-tree", "-r", "-z", "--raw", "--no-abbrev",
                               "--no-renames", old, new], stdout_as_string=False)
    tokens, changed = output.split(b"\0"), {}
    for meta, path in zip(tokens[0::2], tokens[1::2]):
        if not path.endswith(suffixes):
            continue
        _, new_mode, _, new_blob, _ = meta.lstrip(b"\n")[1:].split(b" ")
        regular = new_mode not in (b"000000", b"120000", b"160000")
        changed[decode(path)] = new_blob.decode() if regular else None
    return changed


def first_parent_changes(repo: git.Repo, commit: Commit) -> tuple:
    """A merge commit's Rust changes against its first parent."""
    output = repo.git.execute(
        ["git", "diff-tree", "-r", "-z", "-M", "--raw", "--no-abbrev", commit.parents[0],
         commit.sha], stdout_as_string=False)
    changes, _ = _parse_raw(output.split(b"\0"), 0)
    return tuple(changes)


class BlobReader:
    """Blob bytes by sha through one persistent `git cat-file --batch` process."""

    def __init__(self, repo: git.Repo):
        self.repo = repo

    def read(self, sha: str) -> bytes | None:
        """The blob's bytes, or None if the object is missing or unreadable (a partial clone,
        a pruned or damaged pack). The `cat-file` process is then restarted, since one that
        failed mid-answer could hand the next caller the rest of the last reply."""
        try:
            return self.repo.odb.stream(bytes.fromhex(sha)).read()
        except (ValueError, git.BadObject, git.GitCommandError, OSError):
            self.repo.git.clear_cache()
            return None

    def close(self) -> None:
        self.repo.close()
