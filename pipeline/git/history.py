"""A git repository in, its history (commits and their changed Rust files) and blob bytes out.

One `git log --raw -z` lists the whole history with its changes, and blobs come through
GitPython's persistent `git cat-file --batch` process: one process per run instead of one
per commit. Paths and messages are read as bytes, because a diff parser that decodes
text loses non-UTF-8 paths without an error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import git
import pygit2

from pipeline.errors import PipelineError
from pipeline.git.command import limit_libgit2_memory, memory_limits, network_limits, run_git
from pipeline.records import Commit, FileChange
from pipeline.text import decode

RUST_SUFFIX = b".rs"
_LOG_FORMAT = "%x01%H%x00%P%x00%at%x00%ct%x00%an%x00%B%x00"


def _repository_error(path: str, why: str) -> PipelineError:
    return PipelineError(
        f"the repository {path} {why}. Point repo= (or its entry in repos=) at the working "
        "tree of a git repository that holds Rust (.rs) files, e.g. `doit "
        "repo=~/projects/the-block`, or set repo in pipeline.toml (see README.md); leave repo "
        "unset to build the generated sample repository.")


def open_repository(path: str) -> git.Repo:
    """A GitPython Repo for path, or a PipelineError that says what is wrong and what to do."""
    location = Path(path).expanduser()
    if not location.exists():
        raise _repository_error(path, "does not exist")
    if not location.is_dir():
        raise _repository_error(path, "is a file, not a directory")
    try:
        repo = git.Repo(location, odbt=git.GitCmdObjectDB)
    except git.InvalidGitRepositoryError:
        raise _repository_error(path, "is not a git repository") from None
    except git.GitError as error:
        raise _repository_error(path, f"could not be opened by git ({error})") from None
    # network limits for the fetches of a partial clone; memory limits for cat-file
    repo.git.update_environment(**network_limits(), **memory_limits())
    return repo


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


def list_commits(repo: git.Repo, head: str, missing: frozenset | None = None) -> list[Commit]:
    """Every commit reachable from head in temporal order: committer time, ties topological.

    missing is None for a complete repository: git finds renames among all its files. For a
    partial clone it holds the blobs the clone lacks, and renames are found per commit among
    the Rust files whose blobs are here (find_renames), so git never needs a blob it would
    have to fetch."""
    renames = "-M" if missing is None else "--no-renames"
    output = run_git(repo, ["-c", "core.quotePath=false", "log", f"--format={_LOG_FORMAT}",
                            "--raw", "-z", renames, "--no-abbrev", "--topo-order", "--reverse",
                            head])
    commits = _parse_log(output)
    if missing is not None:
        commits = [dataclasses.replace(commit, changes=find_renames(
                       repo, commit.parents[0], commit.sha, commit.changes, missing))
                   if commit.parents else commit for commit in commits]
    return in_temporal_order(commits, [commit.sha for commit in commits])


def in_temporal_order(commits: list, topological: list, plain: bool = False) -> list:
    """commits (Commits, or their plain dicts) by committer time, ties in the topological
    order (a list of shas)."""
    position = {sha: index for index, sha in enumerate(topological)}
    if plain:
        return sorted(commits, key=lambda commit: (commit["committer_time"],
                                                   position[commit["sha"]]))
    return sorted(commits, key=lambda commit: (commit.committer_time, position[commit.sha]))


def topological_order(repo: git.Repo, head: str) -> list[str]:
    """The shas reachable from head, parents first: the walk list_commits makes, without
    the diffs (a tenth of its time)."""
    return run_git(repo, ["rev-list", "--topo-order", "--reverse", head]).decode().split()


def read_commits(repo: git.Repo, shas: list) -> list[Commit]:
    """The given commits of a complete repository with their changes, as list_commits reads
    them."""
    if not shas:
        return []
    return _parse_log(run_git(repo, ["-c", "core.quotePath=false", "log",
                                     f"--format={_LOG_FORMAT}", "--raw", "-z", "-M",
                                     "--no-abbrev", "--no-walk=unsorted", *shas]))


def _blob_of(change: FileChange) -> str:
    return change.old_blob if change.status == "D" else change.new_blob


def find_renames(repo: git.Repo, old: str, new: str, changes: tuple, missing: frozenset) -> tuple:
    """changes between two commits (listed without renames) with the renames git finds among
    the added and deleted Rust files whose blobs are here. The pathspec keeps git from
    reading any other blob, which in a partial clone it would try to fetch. Paths that are
    not UTF-8 cannot be named in a pathspec here (they were decoded with replacement)."""
    searched = [change for change in changes if change.status in "AD"
                and _blob_of(change) not in missing and "\ufffd" not in change.new_path]
    if {change.status for change in searched} != {"A", "D"}:
        return changes
    output = run_git(repo, ["diff-tree", "-r", "-z", "-M", "--raw", "--no-abbrev", old, new,
                            "--", *(f":(literal){change.new_path}" for change in searched)])
    found, _ = _parse_raw(output.split(b"\0"), 0)
    if not any(change.status == "R" for change in found):
        return changes
    kept = [change for change in changes if change not in searched]
    # git lists a rename where its new path sorts among the others; so does this.
    return tuple(sorted(kept + found, key=lambda change: change.new_path))


def list_tree(repo: git.Repo, commit: str, suffixes: tuple) -> dict:
    """path -> blob sha of the files in commit's tree whose names end in suffixes
    (symlinks and submodules left out)."""
    output = run_git(repo, ["ls-tree", "-r", "-z", commit])
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
    output = run_git(repo, ["diff-tree", "-r", "-z", "--raw", "--no-abbrev", "--no-renames",
                            old, new])
    tokens, changed = output.split(b"\0"), {}
    for meta, path in zip(tokens[0::2], tokens[1::2]):
        if not path.endswith(suffixes):
            continue
        _, new_mode, _, new_blob, _ = meta.lstrip(b"\n")[1:].split(b" ")
        regular = new_mode not in (b"000000", b"120000", b"160000")
        changed[decode(path)] = new_blob.decode() if regular else None
    return changed


# The type bits of a tree entry's mode: list_tree's files are regular files (not symlinks,
# submodules or subtrees).
_TYPE_BITS, _REGULAR_FILE = 0o170000, 0o100000


class TreeReader:
    """tree_changes without a `git diff-tree` process per call: libgit2 (pygit2) compares
    the two trees in this process, walking only into subtrees whose ids differ. The symbol
    index asks for one diff per commit, and starting a git process, or reading and
    comparing each changed tree in Python, costs more than the few files a commit changes.
    """

    def __init__(self, repo: git.Repo):
        self.git_dir = repo.git_dir
        self._repository = None                  # opened at first use
        self._last_tree = (None, None)           # (commit, its tree) of the last file_blob

    def _tree(self, commit: str):
        if self._repository is None:
            limit_libgit2_memory()
            self._repository = pygit2.Repository(self.git_dir)
        return self._repository[commit].peel(pygit2.Tree)

    def changes(self, old: str, new: str, suffixes: tuple) -> dict | None:
        """What tree_changes(repo, old, new, suffixes) gives, less the entries that make no
        difference to list_tree's view (a mode change, a symlink that stays left out), in
        the same order; None if an object could not be read (the caller asks git then)."""
        try:
            trees = [self._tree(commit) for commit in (old, new)]
            deltas = trees[0].diff_to_tree(trees[1]).deltas
        except (KeyError, ValueError, pygit2.GitError):
            return None
        changed: dict = {}
        for delta in deltas:                 # without renames: one path, in git's order
            path = delta.new_file.raw_path
            if path.endswith(suffixes):
                old_blob, new_blob = _file_blob(delta.old_file), _file_blob(delta.new_file)
                if old_blob != new_blob:
                    changed[decode(path)] = new_blob
        return changed

    def file_blob(self, commit: str, path: str) -> str | None:
        """The blob id of the regular file at path in commit's tree; None if there is none
        (or an object could not be read)."""
        try:
            if self._last_tree[0] != commit:
                self._last_tree = (commit, self._tree(commit))
            entry = self._last_tree[1][path]
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return str(entry.id) if entry.filemode & _TYPE_BITS == _REGULAR_FILE else None


def _file_blob(file) -> str | None:
    """The blob id of one side of a delta as list_tree sees it: None where there is no file
    (added or deleted) or no regular one (a symlink or submodule)."""
    return str(file.id) if file.mode & _TYPE_BITS == _REGULAR_FILE else None


def first_parent_changes(repo: git.Repo, commit: Commit, missing: frozenset | None) -> tuple:
    """A merge commit's Rust changes against its first parent (renames as list_commits finds
    them for the same missing)."""
    renames = "-M" if missing is None else "--no-renames"
    output = run_git(repo, ["diff-tree", "-r", "-z", renames, "--raw", "--no-abbrev",
                            commit.parents[0], commit.sha])
    changes, _ = _parse_raw(output.split(b"\0"), 0)
    if missing is not None:
        return find_renames(repo, commit.parents[0], commit.sha, tuple(changes), missing)
    return tuple(changes)


class BlobReader:
    """Blob bytes by sha through one persistent `git cat-file --batch` process.

    missing: None for a complete repository; for a partial clone, the blobs it lacks. They
    are never asked for, since git would try to fetch each from the (unreachable) remote."""

    def __init__(self, repo: git.Repo, missing: frozenset | None = None):
        self.repo = repo
        self.missing = missing

    def read(self, sha: str) -> bytes | None:
        """The blob's bytes, or None if the object is missing or unreadable (a partial clone,
        a pruned or damaged pack). A failed read restarts the `cat-file` process, since one
        that failed mid-answer could hand the next caller the rest of the last reply, and is
        tried once more: a process that died (a Ctrl-C reached it) must not make a blob that
        is there look missing, which a shard would record for good."""
        if self.missing and sha in self.missing:
            return None
        for _ in range(2):
            try:
                return self.repo.odb.stream(bytes.fromhex(sha)).read()
            except (ValueError, git.BadObject, git.GitCommandError, OSError):
                self.repo.git.clear_cache()
        return None

    def close(self) -> None:
        self.repo.close()
