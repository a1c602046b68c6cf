"""Token shards of the timeline's commits (of one repository or several) in, the parts of
dataset/{train,val,test} (NAME.pt and NAME.jsonl), tokenizer.json, stats.json and
manifest.json out.

The manifest is removed first and written last: a merge cut short never leaves outputs
that look complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from pipeline import __version__, store
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.merge.commit_rows import ROWS_VERSION, commit_rows, missing_rows, rows_key
from pipeline.merge.decoding import Decoder
from pipeline.merge.messages import low_information
from pipeline.merge.parts import PART_VERSION, part_name, write_part, written_part
from pipeline.merge.splits import SPLITS, kept_segments
from pipeline.merge.stats import combined_measures, dataset_stats, repository_stats
from pipeline.merge.summaries import SUMMARY_VERSION, load_summaries
from pipeline.periods import split_bounds
from pipeline.timeline import Timeline
from pipeline.tokens.layout import layout_of

# Bump when the output files change: part of the merge key.
DATASET_VERSION = 6


def merge_key(settings: Settings, token_keys: list, tokenizer_hash: str, names) -> str:
    """names: the repository's name, or with several the names and each commit's source."""
    # The versions of the merge's cache records too: the report reads the part records.
    return store.content_key([token_keys, tokenizer_hash, names,
                              settings.section_hash(settings.split_section()), DATASET_VERSION,
                              SUMMARY_VERSION, ROWS_VERSION, PART_VERSION])


def _write_json(path: Path, value) -> None:
    store.write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


def _commit_range(summaries: list) -> dict:
    if not summaries:
        return {}
    return {"commits": len(summaries), "first_commit": summaries[0].sha,
            "last_commit": summaries[-1].sha, "first_date": _iso(summaries[0].time),
            "last_date": _iso(summaries[-1].time)}


def _repository_entry(listing: dict, per_split: dict, shared: int) -> dict:
    """shared: the repository's commits an earlier one has, counted there (a fork's)."""
    return {"name": listing["name"], "path": listing["repo"], "ref": listing["ref"],
            "head": listing["head"], "shallow_boundary": listing.get("shallow", []),
            "commits": per_split, "commits_shared_with_an_earlier_repository": shared}


def _manifest(settings, timeline, key, tokenizer_info, tokenizer, layout, summaries_by_split,
              parts: dict, files: dict, repository_stats: dict) -> dict:
    """Everything needed to know what the outputs are and to reproduce them."""
    return {
        "pipeline_version": __version__, "merge_key": key,
        "settings": dataclasses.asdict(settings),
        "repositories": [_repository_entry(listing, {
            split: repository_stats[listing["name"]][split]["commits"] for split in SPLITS},
            shared) for listing, shared in zip(timeline.listings, timeline.shared)],
        "tokenizer": {"hash": tokenizer_info["hash"], "source": tokenizer_info["source"],
                      "trained_on_commit": tokenizer_info["trained_on_commit"],
                      "layout": layout.describe(), "added_tokens": {
                          token: tokenizer.token_to_id(token)
                          for token in tokenizer_info["added_tokens"]}},
        "splits": {split: {**_commit_range(summaries_by_split[split]),
                           "parts": [part["name"] for part in parts[split]],
                           "part_keys": [part["key"] for part in parts[split]]}
                   for split in SPLITS},
        "files": dict(sorted(files.items())),
    }


def _written_parts(out: Path) -> dict:
    """Part name -> key, of the parts the last complete merge wrote (its manifest's)."""
    try:
        splits = json.loads((out / "manifest.json").read_text())["splits"]
        return {name: key for split in splits.values()
                for name, key in zip(split["parts"], split["part_keys"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _part_ranges(start: int, end: int, size: int) -> list:
    """(number, first, last) of the parts of the split holding history positions
    [start, end): part k holds the split's commits among positions [k*size, (k+1)*size), so a
    part keeps its name and content when commits are added after it. A split without
    commits has one empty part."""
    if start == end:
        return [(start // size, start, end)]
    return [(number, max(start, number * size), min(end, (number + 1) * size))
            for number in range(start // size, (end - 1) // size + 1)]


def _file_entry(path: Path) -> dict:
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "bytes": path.stat().st_size}


def _remove_other_parts(out: Path, names: set) -> None:
    """Part files of an earlier merge that this one does not write (a split now has fewer
    parts), the one-file splits of earlier versions, and the temporary file of a part whose
    writer was killed (a pool's worker at Ctrl-C)."""
    for split in SPLITS:
        for path in [*out.glob(f"{split}-*.pt"), *out.glob(f"{split}-*.jsonl"),
                     *out.glob(f".{split}-*.tmp"), out / f"{split}.pt", out / f"{split}.jsonl"]:
            if path.name not in names:
                path.unlink(missing_ok=True)


def merge(settings: Settings, timeline: Timeline, token_keys: list, token_shard,
          tokenizer_info: dict, tokenizer, key: str, tensor_writer, write_parts) -> dict:
    """Write the split parts (tensors, by tensor_writer: see parts.write_part; and texts),
    stats and manifest from the token shards of the timeline's commits
    (token_keys and token_shard(position) in its order); returns the stats.
    write_parts(jobs, missing rows) first writes the parts to write elsewhere (the pool's
    workers: see Worker.write_part for jobs) and returns name -> (key, record) of those it
    wrote, or leaves them to the merge. The garbage
    collector waits: the merge holds a summary per commit and makes no cycles, and its
    passes over them would cost a 20,000-commit merge a second."""
    with store.collection_paused():
        return _merge(settings, timeline, token_keys, token_shard, tokenizer_info, tokenizer,
                      key, tensor_writer, write_parts)


def _merge(settings: Settings, timeline: Timeline, token_keys: list, token_shard,
           tokenizer_info: dict, tokenizer, key: str, tensor_writer, write_parts) -> dict:
    out = settings.dataset
    out.mkdir(parents=True, exist_ok=True)
    written = _written_parts(out)
    (out / "manifest.json").unlink(missing_ok=True)
    layout = layout_of(tokenizer)
    summaries = load_summaries(settings, token_keys, token_shard)
    val_start, test_start = split_bounds([s.time for s in summaries], settings)
    bounds = dict(zip(SPLITS, ((0, val_start), (val_start, test_start),
                               (test_start, len(summaries)))))
    summaries_by_split = {split: summaries[start:end] for split, (start, end) in bounds.items()}
    uninformative = low_information(timeline.commits)
    kept, drops = kept_segments(settings, summaries_by_split,
                                uninformative if settings.message_filter == "drop" else set())
    names = timeline.names

    def commit_of(position):
        return summaries[position].sha, summaries[position].time

    decoder = Decoder(tokenizer)

    def rows_of(wanted):
        return commit_rows(settings, layout, decoder, wanted, token_shard, commit_of)

    # split -> (part name, (rows key, history position, kept segments, repository) of each
    # of its commits) of each part
    plans = {split: [(part_name(split, number),
                      [(rows_key(token_keys[position], kept[split][position - start],
                                 names[timeline.sources[position]]),
                        position, kept[split][position - start],
                        names[timeline.sources[position]])
                       for position in range(first, last)])
                     for number, first, last in _part_ranges(start, end,
                                                             settings.commits_per_part)]
             for split, (start, end) in bounds.items()}
    # part name -> its record, if the last complete merge wrote it as it would be now
    done = {name: written_part(settings, out, name, [w[0] for w in wanted], layout.pad_id,
                               written.get(name))
            for split in SPLITS for name, wanted in plans[split]}
    # The parts to write, with the sha and time of each commit, written first by
    # write_parts when the rows no record holds are many; the others here.
    jobs = [(name, [(*commit, *commit_of(commit[1])) for commit in wanted])
            for split in SPLITS for name, wanted in plans[split] if done[name] is None]
    missing = sum(len(missing_rows(settings, wanted)) for _, wanted in jobs)
    written_elsewhere = write_parts(jobs, missing)

    files, parts, measures = {}, {}, {}
    for split in SPLITS:
        parts[split], split_measures = [], []
        for name, wanted in plans[split]:
            if name in written_elsewhere:
                part_key, part = written_elsewhere[name]
            else:
                part_key, part = write_part(settings, out, name, [w[0] for w in wanted],
                                            lambda wanted=wanted: rows_of(wanted),
                                            layout.pad_id, done[name], tensor_writer)
            parts[split].append({"name": name, "key": part_key})
            split_measures.append(part["measures"])
            files.update({f"{name}{suffix}": entry for suffix, entry in part["files"].items()})
        measures[split] = combined_measures(split_measures)
    _remove_other_parts(out, set(files))
    shutil.copyfile(tokenizer_info["path"], out / "tokenizer.json")
    files["tokenizer.json"] = _file_entry(out / "tokenizer.json")
    stats = dataset_stats(summaries_by_split, kept, measures, drops)
    stats["low_information_messages"] = {
        split: sum(s.sha in uninformative for s in summaries_by_split[split])
        for split in SPLITS}
    stats["repositories"] = repository_stats(names, timeline.sources, bounds,
                                             summaries_by_split, kept)
    _write_json(out / "stats.json", stats)
    files["stats.json"] = _file_entry(out / "stats.json")
    manifest = _manifest(settings, timeline, key, tokenizer_info, tokenizer, layout,
                         summaries_by_split, parts, files, stats["repositories"])
    _write_json(out / "manifest.json", manifest)
    return stats


def row_measures(settings: Settings) -> dict:
    """split -> the measures of the rows dataset/ holds (row lengths and times among them),
    from the records of the parts its manifest lists."""
    manifest = json.loads((settings.dataset / "manifest.json").read_text())
    measures = {}
    for split, described in manifest["splits"].items():
        records = [store.read_record(store.record_path(settings.cache, "parts", key))
                   for key in described["part_keys"]]
        if any(record is None for record in records):
            raise PipelineError("a part record of the last merge is missing from the cache; "
                                "run `doit` again to merge anew.")
        measures[split] = combined_measures([record["measures"] for record in records])
    return measures


def is_current(settings: Settings, key: str) -> bool:
    """Whether the outputs on disk were written, completely, by a merge with this key."""
    try:
        manifest = json.loads((settings.dataset / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("merge_key") == key and all(
        (settings.dataset / name).is_file() for name in manifest.get("files", {}))
