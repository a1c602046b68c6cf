"""Token shards in, what the merge decides and counts with out: one small summary per commit.

The merge needs, for every commit of the history, its time, each segment's target and
leak keys (the leakage guard and the duplicate filter look across all commits) and the
counts stats.json sums; it needs the segments' token ids only for the commits whose rows
it writes. A summary is that small part of a token shard. All the history's summaries
live in one cache file, keyed by token shard key, so a merge after one new commit reads
one file instead of every token shard; a summary that is missing (or the whole file,
damaged) is made again from its token shard. The tokens stage's workers store the
summaries of the shards they build, a file per block, and the next merge takes them into
the index: a first merge of a long history then reads none of its token shards for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from pipeline import store
from pipeline.config import Settings
from pipeline.records import TokenShard
from pipeline.tokens.text_ids import id_count

# Bump when a summary's fields change.
SUMMARY_VERSION = 2
# The counts of a token shard that stats.json sums.
COUNTS = ("skipped", "truncations", "flagged", "context_counts", "seconds")


class SegmentSummary(NamedTuple):
    target_key: str
    exact_keys: list           # leak keys, exact and with whitespace collapsed
    whitespace_keys: list
    kind: str
    change: str
    old_tokens: int
    new_tokens: int

    def leak_keys(self, guard: str) -> list:
        return self.exact_keys if guard == "exact" else self.whitespace_keys


class Summary(NamedTuple):
    sha: str
    time: int
    message_tokens: int
    segments: list             # SegmentSummary
    missing_objects: list
    counts: dict               # name in COUNTS -> its counter, when not empty


def summarize(shard: TokenShard) -> list:
    """A token shard's summary as stored: lists, not dicts, since a 20,000-commit history's
    summaries are read at every merge and decoding lists is several times faster."""
    segments = [[s.target_key, s.leak_keys["exact"], s.leak_keys["whitespace"], s.kind,
                 s.change, s.field_tokens["old_code"], s.field_tokens["new_code"]]
                for s in shard.segments]
    counts = {name: getattr(shard, name) for name in COUNTS if getattr(shard, name)}
    return [shard.sha, shard.committer_time, id_count(shard.message), segments,
            shard.missing_objects, counts]


def _summary(stored: list) -> Summary:
    sha, time, message_tokens, segments, missing, counts = stored
    return Summary(sha, time, message_tokens, [SegmentSummary(*s) for s in segments],
                   missing, counts)


def _index_path(settings: Settings) -> Path:
    return settings.cache / "merge" / "summaries.msgpack"


def _new_summaries_dir(settings: Settings) -> Path:
    return settings.cache / "merge" / "new-summaries"


def store_new_summaries(settings: Settings, by_key: dict) -> None:
    """Store summaries of token shards just built (token shard key -> summarize(shard)) for
    the next merge. A summary is a pure function of its key, so a file left by a run that
    stopped before its merge is as good later."""
    if by_key:
        name = store.content_key(sorted(by_key)) + ".msgpack"
        store.write_record(_new_summaries_dir(settings) / name,
                           {"version": SUMMARY_VERSION, "by_key": by_key})


def load_summaries(settings: Settings, token_keys: list, token_shard) -> list:
    """The Summary of each token shard key, in order; token_shard(position) reads (or
    rebuilds) the shard of a key the index lacks. The index is rewritten, with exactly the
    history's keys, when a key was added or is no longer used."""
    path = _index_path(settings)
    stored = store.read_record(path)
    if not stored or stored.get("version") != SUMMARY_VERSION:
        stored = {"version": SUMMARY_VERSION, "by_key": {}}
    by_key, changed = stored["by_key"], False
    new_files = sorted(_new_summaries_dir(settings).glob("*.msgpack"))
    for new_file in new_files:
        # A damaged file is reported and left out, as is one of another summary version:
        # their shards are read instead.
        found = store.read_record(new_file) or {}
        if found.get("version") == SUMMARY_VERSION:
            by_key.update(found["by_key"])
    summaries = []
    for position, key in enumerate(token_keys):
        if key not in by_key:
            by_key[key], changed = summarize(token_shard(position)), True
        summaries.append(_summary(by_key[key]))
    wanted = set(token_keys)
    if changed or new_files or len(by_key) != len(wanted):
        stored["by_key"] = {key: value for key, value in by_key.items() if key in wanted}
        store.write_record(path, stored)
    for new_file in new_files:               # in the index now
        new_file.unlink(missing_ok=True)
    return summaries
