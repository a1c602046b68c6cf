"""Token shards in, what the merge decides and counts with out: one small summary per commit.

The merge needs, for every commit of the history, its time, each segment's target and
leak keys (the leakage guard and the duplicate filter look across all commits) and the
counts stats.json sums; it needs the segments' token ids only for the commits whose rows
it writes. A summary is that small part of a token shard. All the history's summaries
live in one cache file, keyed by token shard key, so a merge after one new commit reads
one file instead of every token shard; a summary that is missing (or the whole file,
damaged) is made again from its token shard.
"""

from __future__ import annotations

from array import array

from pipeline import store
from pipeline.config import Settings
from pipeline.records import TokenShard
from pipeline.tokens.segments import ID_TYPE

# Bump when a summary's fields change.
SUMMARY_VERSION = 1


def _tokens(ids: bytes) -> int:
    return len(ids) // array(ID_TYPE).itemsize


def summarize(shard: TokenShard) -> dict:
    return {
        "sha": shard.sha, "time": shard.committer_time,
        "message_tokens": _tokens(shard.message),
        "segments": [{"target_key": s.target_key, "leak_keys": s.leak_keys, "kind": s.kind,
                      "change": s.change, "old_tokens": s.field_tokens["old_code"],
                      "new_tokens": s.field_tokens["new_code"]} for s in shard.segments],
        "skipped": shard.skipped, "truncations": shard.truncations, "flagged": shard.flagged,
        "missing_objects": shard.missing_objects, "context_counts": shard.context_counts,
        "seconds": shard.seconds}


def _index_path(settings: Settings):
    return store.pointer_path(settings.cache, "merge").with_name("summaries.msgpack")


def load_summaries(settings: Settings, token_keys: list, token_shard) -> list:
    """The summary of each token shard key, in order; token_shard(position) reads (or
    rebuilds) the shard of a key the index lacks. The index is rewritten, with exactly the
    history's keys, when a key was added or is no longer used."""
    path = _index_path(settings)
    stored = store.read_record(path)
    if not stored or stored.get("version") != SUMMARY_VERSION:
        stored = {"version": SUMMARY_VERSION, "by_key": {}}
    by_key, changed = stored["by_key"], False
    summaries = []
    for position, key in enumerate(token_keys):
        if key not in by_key:
            by_key[key], changed = summarize(token_shard(position)), True
        summaries.append(by_key[key])
    wanted = set(token_keys)
    if changed or len(by_key) != len(wanted):
        stored["by_key"] = {key: value for key, value in by_key.items() if key in wanted}
        store.write_record(path, stored)
    return summaries
