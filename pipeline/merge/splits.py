"""Token shards split in temporal order in, the segments the merge keeps out.

The leakage guard drops from val and test every segment whose change already appears in
an earlier split (cherry-picks, reverts, re-applied patches); within a split, a target
already seen is a duplicate; commits with a low-information message may be left out.
"""

from __future__ import annotations

from pipeline.config import Settings


SPLITS = ("train", "val", "test")


def _count(shard, reason: str) -> None:
    shard.skipped = {**shard.skipped, reason: shard.skipped.get(reason, 0) + 1}


def kept_segments(settings: Settings, shards_by_split: dict, dropped_commits: set) -> dict:
    """id(shard) -> the segments of that shard the merge keeps; each drop is counted on its
    shard. Dropped: every segment of a commit in dropped_commits; in val and test, a
    change an earlier split already holds (the leakage guard); within a split, a target
    (new code) that an earlier commit of the split already has, unless keep_duplicates."""
    guard = settings.leakage_guard
    seen: set = set()
    kept = {}
    for split in SPLITS:
        targets: set = set()
        for shard in shards_by_split[split]:
            keep = []
            for segment in shard.segments:
                if shard.sha in dropped_commits:
                    _count(shard, "low_information_message_dropped")
                elif split != "train" and guard != "off" and \
                        set(segment.leak_keys[guard]) & seen:
                    _count(shard, f"leakage_{split}")
                elif not settings.keep_duplicates and segment.target_key in targets:
                    _count(shard, "duplicate_target")
                else:
                    keep.append(segment)
                    targets.add(segment.target_key)
            for segment in keep:
                if guard != "off":
                    seen.update(segment.leak_keys[guard])
            kept[id(shard)] = keep
    return kept
