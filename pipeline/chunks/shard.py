"""A commit and a worker's git reader, parses and symbol index in, its chunk shard out."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline import store
from pipeline.chunks.changed_items import commit_chunks
from pipeline.chunks.context import attach_context
from pipeline.chunks.resolve import same_commit
from pipeline.config import Settings
from pipeline.git.history import first_parent_changes
from pipeline.records import ChunkShard, Commit
from pipeline.rust import symbols, syntax
from pipeline.rust.symbols import SymbolIndex

# Bump when chunk shards change shape or content: part of every chunk shard's key.
CHUNKER_VERSION = 41


def _key_parts(settings: Settings) -> list:
    """What a chunk shard's key holds besides its commit: the stage's settings and code."""
    return [settings.section_hash(settings.chunk_section()), syntax.ANALYSER_VERSION,
            symbols.DEFINITIONS_VERSION, CHUNKER_VERSION]


def shard_key(settings: Settings, sha: str) -> str:
    """A commit sha names its whole tree, so this key stands for the shard's content."""
    return store.content_key([sha, *_key_parts(settings)])


def shard_keys(settings: Settings, shas) -> dict:
    """sha -> shard_key of each sha, the settings hashed once (a no-op `doit` on a
    20,000-commit history makes them all)."""
    parts = _key_parts(settings)
    return {sha: store.content_key([sha, *parts]) for sha in shas}


def chunk_shard_path(settings: Settings, sha: str) -> Path:
    return store.record_path(settings.cache, "chunks", shard_key(settings, sha))


def build_chunk_shard(settings: Settings, commit: Commit, repo, reader,
                      index: SymbolIndex) -> ChunkShard:
    """The commit's chunks with their context. index.parses is the chunker's parses."""
    started = time.perf_counter()
    if len(commit.parents) > 1:
        changes = (first_parent_changes(repo, commit, reader.missing)
                   if settings.include_merges else None)
    else:
        changes = commit.changes
    files, counts = commit_chunks(settings, index.parses, reader, commit, changes)
    context_counts: dict = {}
    # A commit without chunks (a merge left out, one without Rust changes, one whose
    # changes were all skipped) needs no context, so the index stays where it is: moving it
    # to a merge's parent, then back to the next branch commit's older base, took 12 % of
    # the per-commit seconds of cargo's chunks stage.
    if any(file.chunks for file in files):
        # Context is the parent's tree, as the author saw it (a root commit has none). The
        # index moves after the chunker: the file versions it needs are then parsed already.
        index.move_to(commit.parents[0] if commit.parents else None)
        context_counts = attach_context(files, index, same_commit(index, commit.sha, changes),
                                        settings)
    return ChunkShard(sha=commit.sha, message=commit.message,
                      committer_time=commit.committer_time,
                      chunks=[chunk for file in files for chunk in file.chunks],
                      skipped=dict(sorted(counts.skipped.items())),
                      flagged=dict(sorted(counts.flagged.items())),
                      missing_objects=counts.missing, context_counts=context_counts,
                      seconds={"chunks": time.perf_counter() - started})
