"""A commit sha in, its chunk shard or token shard written to the cache out.

These run in the doit process or in worker processes (pipeline.parallel), so this module
imports nothing heavy (no torch) and keeps its per-process state (git session, symbol
index, recent parses, tokenizer) in the modules it calls.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline import cache
from pipeline.chunking import commit_chunks, shard_key
from pipeline.commits import current_commit_list, git_session, repository_path
from pipeline.config import Settings
from pipeline.context import attach_context
from pipeline.examples import build_segments, token_shard_key
from pipeline.git_history import first_parent_changes
from pipeline.symbols import symbol_index
from pipeline.tokenizing import current_tokenizer_info, load_tokenizer, special_ids


def chunk_shard_path(settings: Settings, sha: str) -> Path:
    return cache.record_path(settings.cache, "chunks", shard_key(settings, sha))


def token_shard_path(settings: Settings, sha: str, tokenizer_hash: str) -> Path:
    key = token_shard_key(settings, shard_key(settings, sha), tokenizer_hash)
    return cache.record_path(settings.cache, "tokens", key)


def write_chunk_shard(settings: Settings, sha: str) -> dict:
    started = time.perf_counter()
    commit = current_commit_list(settings)["by_sha"][sha]
    repo, reader = git_session(settings)
    if len(commit.parents) > 1:
        changes = first_parent_changes(repo, commit) if settings.include_merges else None
    else:
        changes = commit.changes
    index = symbol_index(repo, reader, settings.cache, settings.max_file_bytes)
    shard = commit_chunks(settings, index.parses, reader, commit, changes)
    index.move_to(sha)
    attach_context(shard, index, {change.new_path for change in changes or ()}, settings)
    shard["seconds"] = {"chunks": time.perf_counter() - started}
    cache.write_record(chunk_shard_path(settings, sha), shard)
    return shard


def read_or_rebuild(path: Path, rebuild):
    """A shard from the cache; one that is damaged (or gone) is rebuilt here and reported,
    since its task, seeing its file in place, would not run again."""
    shard = cache.read_record(path)
    return shard if shard is not None else rebuild()


def write_token_shard(settings: Settings, sha: str) -> dict:
    started = time.perf_counter()
    info = current_tokenizer_info(settings)
    tokenizer = load_tokenizer(info["path"])
    shard = read_or_rebuild(chunk_shard_path(settings, sha),
                            lambda: write_chunk_shard(settings, sha))
    repo_name = Path(repository_path(settings)).expanduser().resolve().name
    tokens = build_segments(settings, tokenizer, special_ids(tokenizer), shard, repo_name)
    tokens["seconds"] = {**shard["seconds"], "tokens": time.perf_counter() - started}
    cache.write_record(token_shard_path(settings, sha, info["hash"]), tokens)
    return tokens


WRITERS = {"chunks": write_chunk_shard, "tokens": write_token_shard}


def build_block(stage: str, settings: Settings, shas: list) -> list:
    """Write the stage's shard for each sha, in order; returns shas."""
    for sha in shas:
        WRITERS[stage](settings, sha)
    return shas
