"""Cache and doit state in, what is stale removed: `doit gc` and a damaged doit state file.

Shards are content-addressed, so after a force-push, a rebase or changed settings the old
ones are never read again but stay on disk; `doit gc` removes every commit, chunk and
token record and tokenizer the current commit list and settings do not use, the part and
commit-rows records the current outputs were not written from, and the
per-file analyses that earlier versions stored (`analysis/`, no longer read), and the
temporary files of writes cut short (a worker ended by Ctrl-C). Per-file
definitions are kept: they are keyed by file content, which any history may meet again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from pipeline import store
from pipeline.chunks.shard import chunk_shard_path
from pipeline.config import Settings
from pipeline.git.commit_list import list_path, pointer_path
from pipeline.tokens.segments import token_shard_path


def referenced_records(settings: Settings, listing: dict, tokenizer_info: dict) -> set:
    """The cache records the commit list and settings of the last build use."""
    keep = {Path(list_path(settings, listing["head"])),
            pointer_path(settings)}
    for commit in listing["commits"]:
        keep.add(chunk_shard_path(settings, commit["sha"]))
        keep.add(token_shard_path(settings, commit["sha"], tokenizer_info["hash"]))
    keep.update(_merge_records(settings))
    return {path.resolve() for path in keep}


def _merge_records(settings: Settings) -> set:
    """The part and commit-rows records the outputs in dataset/ were written from (none if
    the last merge did not finish: they are then made again)."""
    try:
        manifest = json.loads((settings.dataset / "manifest.json").read_text())
    except (OSError, ValueError):
        return set()
    keep = set()
    for split in manifest.get("splits", {}).values():
        for key in split.get("part_keys", []):
            keep.add(store.record_path(settings.cache, "parts", key))
            part = store.read_record(store.record_path(settings.cache, "parts", key)) or {}
            keep.update(store.record_path(settings.cache, "rows", rows_key)
                        for rows_key in part.get("rows_keys", []))
    return keep


def collect_garbage(settings: Settings, keep: set, tokenizer_info: dict) -> tuple[int, int]:
    """Remove unreferenced records; returns (files removed, bytes freed)."""
    removed = freed = 0
    for stage in ("commits", "chunks", "tokens", "analysis", "parts", "rows"):
        for path in (settings.cache / stage).rglob("*.msgpack"):
            if path.resolve() not in keep:
                freed += path.stat().st_size
                path.unlink()
                removed += 1
    for stage in ("commits", "chunks", "tokens", "definitions", "tokenizer", "parts", "rows",
                  "merge"):
        for path in (settings.cache / stage).rglob(".*.tmp"):   # a process killed mid-write
            freed += path.stat().st_size
            path.unlink()
            removed += 1
    tokenizer_dir = settings.cache / "tokenizer"
    current = Path(tokenizer_info["path"]).stem
    for path in tokenizer_dir.glob("*"):
        if path.stem != current and not path.name.startswith(("pin-", "current.")):
            freed += path.stat().st_size
            path.unlink()
            removed += 1
    return removed, freed


def recover_dep_file(path: Path) -> str | None:
    """If doit's state file is not a readable database, move it aside and say so.

    Nothing is lost: every task is up to date exactly when its content-addressed shard
    exists, so doit's own record only saves time on checks."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            connection.execute("SELECT name FROM sqlite_master").fetchall()
        finally:
            connection.close()
        return None
    except sqlite3.DatabaseError as error:
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        return (f"doit's state file {path} was damaged ({error}); it was moved to {aside} "
                "and a new one is started. Nothing is lost: the cache decides what is rebuilt.")
