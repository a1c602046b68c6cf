"""Packed examples and the tokenizer in, one JSON line per example out (dataset/*.jsonl).

Everything the tensors hold is also here as text, so anyone can audit the data or load it
with another trainer: the repository, the commit, its time, each segment's path, item, kind, change, old
code, message (as shown: with the row's first segment), new code and context snippets
(kind, source path, name, origin, text), and the example's full text, which is exactly
what its token ids decode to.
"""

from __future__ import annotations

import json

from pipeline.merge.decoding import Decoder
from pipeline.tokens.layout import Layout
from pipeline.tokens.text_ids import ID_SIZE

BATCH_ROWS = 256     # rows decoded at a time: one call keeps the cores busy, memory bounded


def _ids(data: bytes, skip: int = 0) -> bytes:
    """data's ids but the first skip (the marker)."""
    return data[skip * ID_SIZE:]


def _texts_wanted(layout: Layout, example, shard) -> list:
    """Every id list of one example to decode, in the order _record reads them back."""
    wanted = [example.input_ids.tobytes(), shard.message]
    for segment, pieces, _ in example.parts:
        wanted += [_ids(segment.old, len(layout.ids["before"])), _ids(segment.new)]
        wanted += [_ids(piece.ids, len(layout.context(piece.kind))) for piece in pieces]
    return wanted


def _record(example, shard, repository: str, texts: iter) -> dict:
    text, message = next(texts), next(texts)
    segments = []
    for segment, pieces, with_message in example.parts:
        old, new = next(texts), next(texts)
        segments.append({
            "path": segment.path, "item": segment.item, "kind": segment.kind,
            "change": segment.change, "old_code": old,
            "message": message if with_message else "", "new_code": new,
            "context": [{"kind": piece.kind, "path": piece.path, "name": piece.name,
                         "origin": piece.origin, "text": next(texts)} for piece in pieces]})
    return {"repository": repository, "commit": shard.sha, "time": shard.committer_time,
            "message": message,
            "segments": segments, "text": text}


def jsonl_lines(decoder: Decoder, layout: Layout, rows: list):
    """rows: (example, token shard, repository name) in tensor order; yields each one's
    line of the split's jsonl file. Decoded a batch of rows at a time, so memory stays
    bounded."""
    for start in range(0, len(rows), BATCH_ROWS):
        batch = rows[start:start + BATCH_ROWS]
        wanted = [ids for example, shard, _ in batch
                  for ids in _texts_wanted(layout, example, shard)]
        texts = iter(decoder.decode(wanted))
        for example, shard, repository in batch:
            yield json.dumps(_record(example, shard, repository, texts),
                             ensure_ascii=False) + "\n"
