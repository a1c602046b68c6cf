"""A repository and head in, for a partial clone: the blobs the build reads made local in
one bounded fetch, and those still missing listed.

A partial clone (`git clone --filter=blob:none` or `blob:limit=`) lacks blobs, and git
fetches each one it needs from the promisor remote when asked for it, waiting on the
network as long as the remote takes. The build instead fetches, before it starts, every
Rust and Cargo.toml blob of the history that is not here, in one request that is stopped
once it shows no progress for STALL_SECONDS. What that leaves missing is recorded; the
rest of the build never asks git for those blobs (git would try to fetch each again) and
skips them as missing objects.
"""

from __future__ import annotations

import os
import select
import subprocess

import git

from pipeline.git.command import error_lines, network_limits, run_git

READ_SUFFIXES = (b".rs", b"Cargo.toml")   # the files whose blobs a build reads
STALL_SECONDS = 60                         # a fetch silent this long is given up
_KEEP_STDERR = 1 << 16                     # bytes of a fetch's stderr kept for its message


def promisor_remotes(repo: git.Repo) -> list:
    """The remotes git fetches missing objects from; none for a complete repository."""
    status, output, _ = repo.git.execute(
        ["git", "config", "--get-regexp", r"^(extensions\.partialclone|remote\..+\.promisor)$"],
        with_extended_output=True, with_exceptions=False)     # status 1: no such setting
    remotes = []
    for line in output.splitlines() if status == 0 else []:
        key, _, value = line.partition(" ")
        if key == "extensions.partialclone":
            name = value
        elif value.lower() in ("true", "yes", "on", "1"):
            name = key[len("remote."):-len(".promisor")]
        else:
            continue
        if name not in remotes:
            remotes.append(name)
    return remotes


def blobs_read(repo: git.Repo, head: str) -> set:
    """The blobs of Rust and Cargo.toml files anywhere in head's history (every version
    enters some commit's diff; `-m` adds those a merge introduces). Trees only: no blob is
    read, so nothing is fetched."""
    output = run_git(repo, ["log", "--format=", "--raw", "-z", "--no-renames", "-m",
                            "--no-abbrev", head])
    tokens, found, i = output.split(b"\0"), set(), 0
    while i + 1 < len(tokens):
        meta = tokens[i].lstrip(b"\n")
        if not meta.startswith(b":"):             # the blank between two commits
            i += 1
            continue
        if tokens[i + 1].endswith(READ_SUFFIXES):
            old_blob, new_blob = meta.split(b" ")[2:4]
            found.update({old_blob.decode(), new_blob.decode()})
        i += 2                                    # with --no-renames, one path per entry
    found.discard("0" * 40)
    return found


def missing_objects(repo: git.Repo, head: str) -> set:
    """The objects of head's history that are not here. `--missing=print` lists them
    without fetching them."""
    output = run_git(repo, ["rev-list", "--objects", "--missing=print", head])
    return {line[1:].decode() for line in output.splitlines() if line.startswith(b"?")}


def _stderr_until_stalled(process: subprocess.Popen, stall: float) -> str | None:
    """What the process writes to stderr until it ends, or None once it is silent for stall
    seconds (`--progress` makes a working fetch write at least every second or so)."""
    kept = b""
    while True:
        ready, _, _ = select.select([process.stderr], [], [], stall)
        if not ready:
            return None
        chunk = os.read(process.stderr.fileno(), 65536)
        if not chunk:
            return kept.decode(errors="replace")
        kept = (kept + chunk)[-_KEEP_STDERR:]


def fetch_objects(repo: git.Repo, remote: str, oids: set, stall: float) -> str | None:
    """Fetch oids from remote in one request (the command git's own lazy fetch runs),
    given up once silent for stall seconds. None when it worked, else why not."""
    command = ["git", "-c", "fetch.negotiationAlgorithm=noop", "fetch", remote, "--no-tags",
               "--no-write-fetch-head", "--recurse-submodules=no", "--filter=blob:none",
               "--progress", "--stdin"]
    process = subprocess.Popen(command, cwd=repo.working_tree_dir or repo.git_dir,
                               env={**os.environ, **network_limits()}, stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            process.stdin.write("".join(f"{oid}\n" for oid in sorted(oids)).encode())
            process.stdin.close()
        except BrokenPipeError:          # git stopped before reading them: its stderr says why
            pass
        stderr = _stderr_until_stalled(process, stall)
        if stderr is None:
            return f"the remote gave nothing for {stall:g} s"
        return error_lines(stderr) if process.wait() != 0 else None
    finally:
        if process.poll() is None:       # stalled, or the build was interrupted
            process.kill()
            process.wait()


def make_blobs_local(repo: git.Repo, head: str) -> tuple:
    """(missing, why): for a partial clone, the blobs the build reads that are still not
    here after one fetch from its promisor remotes, and why that fetch failed (None if it
    did not); (None, None) for a complete repository."""
    remotes = promisor_remotes(repo)
    if not remotes:
        return None, None
    wanted = blobs_read(repo, head)
    missing, why = missing_objects(repo, head) & wanted, None
    for remote in remotes:
        if not missing:
            break
        why = fetch_objects(repo, remote, missing, STALL_SECONDS)
        if why is None:
            missing = missing_objects(repo, head) & wanted
        else:
            why = f"{remote}: {why}"
    return frozenset(missing), (why if missing else None)
