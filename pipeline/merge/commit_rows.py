"""One commit's token shard and kept segments in, its rows out: ids, loss spans, the rows'
jsonl lines and what stats.json counts of them, cached by content.

A commit's rows depend only on its token shard, which of its segments the merge keeps and
its repository's name; so they are a cache record keyed by exactly those, and a merge
after `git pull` packs and decodes only the commits it has not seen with that key. When
many are missing (a first merge) the pool's workers write the parts, packing their rows on
every core (with one repository and the local executor; see RunSession.write_parts).
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from pipeline import store
from pipeline.config import Settings
from pipeline.merge.decoding import Decoder
from pipeline.merge.export import jsonl_lines
from pipeline.merge.packing import pack_examples
from pipeline.tokens.layout import Layout
from pipeline.tokens.segments import NAME_TOKENS
from pipeline.tokens.text_ids import id_count

# Bump when rows, their lines or their measures change.
ROWS_VERSION = 4
COMMITS_PER_DECODE = 64    # commits packed, then decoded in one batch


def rows_key(token_key: str, kept: list, name: str) -> str:
    return store.content_key([token_key, kept, name, ROWS_VERSION])


def _measures(examples: list, packing: Counter, time: int) -> dict:
    """What stats.json sums over a commit's rows: tokens (context, imports, context shown
    twice in a row, loss), snippets by kind and origin, context per segment; and each
    row's length and time, which the report plots."""
    measures = Counter(packing)
    lengths, context_per_part = [], []
    kinds, origins = Counter(), Counter()
    for example in examples:
        lengths.append(len(example.input_ids))
        measures["loss_tokens"] += sum(end - start for start, end in example.loss_spans)
        measures["context_dropped"] += example.context_dropped
        seen = set()
        for _, pieces, _ in example.parts:
            measures["parts"] += 1
            measures["parts_with_definition"] += any(p.kind != "import" for p in pieces)
            context_per_part.append(sum(id_count(p.ids) for p in pieces))
            for piece in pieces:
                count = id_count(piece.ids)
                measures["context_tokens"] += count
                measures["import_tokens"] += count if piece.kind == "import" else 0
                measures["repeated_tokens"] += count if piece.ids in seen else 0
                seen.add(piece.ids)
                kinds[piece.kind] += 1
                origins[piece.origin] += piece.kind != "import"
    measures["tokens"] = sum(lengths)
    return {"counts": dict(measures), "row_lengths": lengths,
            "row_times": [time] * len(examples),
            "context_per_part": context_per_part, "snippet_kinds": dict(kinds),
            "origins": dict(origins)}


def _record(sha: str, time: int, name: str, examples: list, packing: Counter,
            lines: list) -> dict:
    return {"sha": sha, "time": time, "repository": name,
            "rows": [{"ids": example.input_ids.tobytes(), "spans": example.loss_spans,
                      "paths": example.paths, "items": example.items} for example in examples],
            "lines": lines, "measures": _measures(examples, packing, time)}


def _build(settings: Settings, layout: Layout, decoder: Decoder, work: list) -> list:
    """work: (token shard, kept positions, repository name) of several commits; their
    records, in order. Decoding the texts of several commits at once keeps the tokenizer's
    threads busy."""
    packed, name_ids = [], {}
    for shard, kept, name in work:
        if name not in name_ids:
            name_ids[name] = decoder.tokenizer.encode(
                name, add_special_tokens=False).ids[:NAME_TOKENS]
        packing = Counter()
        segments = [shard.segments[position] for position in kept]
        examples = pack_examples(settings, layout, name_ids[name], shard.message, segments,
                                 packing)
        packed.append((shard, name, examples, packing))
    lines = jsonl_lines(decoder, layout, [(example, shard, name)
                                            for shard, name, examples, _ in packed
                                            for example in examples])
    return [_record(shard.sha, shard.committer_time, name, examples, packing,
                    [next(lines) for _ in examples])
            for shard, name, examples, packing in packed]


def missing_rows(settings: Settings, wanted: list) -> list:
    """Those of wanted (rows key, history position, kept positions, repository name) whose
    rows commit_rows would pack now: they keep a segment and have no record."""
    return [w for w in wanted
            if w[2] and not os.path.exists(store.record_file(settings.cache, "rows", w[0]))]


def commit_rows(settings: Settings, layout: Layout, decoder: Decoder, wanted: list,
                token_shard, commit_of) -> list:
    """wanted: (rows key, history position, kept positions, repository name) per commit;
    their records, in order, from the cache or packed now (token_shard(position) gives a
    commit's shard, commit_of(position) its sha and committer time).

    A commit that keeps no segment (most commits of a long history) has no rows: its record
    is made here and never stored, since creating a file costs more than making it. The
    others are stored by a thread while the next ones are packed: a file system call
    releases the interpreter, and the merge leaves the other core free."""
    records, paths = [], {}
    for i, (key, position, kept, name) in enumerate(wanted):
        if kept:
            paths[i] = store.record_path(settings.cache, "rows", key)
            records.append(store.read_record(paths[i]))
        else:
            sha, time = commit_of(position)
            records.append(_record(sha, time, name, [], Counter(), []))
    missing = [i for i, record in enumerate(records) if record is None]
    writer, written = ThreadPoolExecutor(max_workers=1), []
    try:
        for start in range(0, len(missing), COMMITS_PER_DECODE):
            batch = missing[start:start + COMMITS_PER_DECODE]
            work = [(token_shard(wanted[i][1]), wanted[i][2], wanted[i][3]) for i in batch]
            for i, record in zip(batch, _build(settings, layout, decoder, work)):
                written.append(writer.submit(store.write_record, paths[i], record))
                records[i] = record
        for done in written:
            done.result()                  # a failed write raises here, as it did inline
    finally:
        # Stopped (Ctrl-C, a failed write): the writes not begun are dropped, not waited for.
        writer.shutdown(wait=True, cancel_futures=True)
    return records
