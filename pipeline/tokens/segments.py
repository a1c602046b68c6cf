"""A chunk shard and a tokenizer in, the commit's token shard (one segment per chunk) out.

One segment per chunk, in StarCoder's commit format with context markers:
    <filename>PATH<ctx_KIND>SNIPPET...<commit_before>OLD<commit_msg>MESSAGE<commit_after>NEW
Each segment carries the message, since a commit may become several examples (packed by
the merge, pipeline.merge.packing). Each field has a token budget and is cut at a line
boundary where one fits; the segment records where its new code (its loss span) starts.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from pathlib import Path

from pipeline import store
from pipeline.chunks.shard import shard_key
from pipeline.config import Settings
from pipeline.records import Chunk, ChunkShard, Segment, TokenShard
from pipeline.tokens.tokenizer import context_marker

# Bump when the example layout changes: part of every token shard's key.
FORMAT_VERSION = 4
# Token ids are stored and packed as machine int32 arrays (msgpack bytes in a shard): the
# merge then reads, joins and turns them into tensors without a Python int per token.
ID_TYPE = "i"
assert array(ID_TYPE).itemsize == 4
# Repository name and path get fixed budgets, so fields + these always fit max_length.
NAME_TOKENS, PATH_TOKENS = 16, 44
FIELDS = ("old_code", "message", "new_code", "context")


def token_shard_key(settings: Settings, chunk_key: str, tokenizer_hash: str) -> str:
    """A chunk shard is a pure function of its key, so its key stands for its content."""
    return store.content_key([chunk_key, tokenizer_hash,
                              settings.section_hash(settings.format_section()), FORMAT_VERSION])


def token_shard_path(settings: Settings, sha: str, tokenizer_hash: str) -> Path:
    key = token_shard_key(settings, shard_key(settings, sha), tokenizer_hash)
    return store.record_path(settings.cache, "tokens", key)


def _cut(encoding, budget: int) -> tuple[list, bool]:
    """The encoding's ids cut to budget, after the last token that ends a line if one fits."""
    ids = encoding.ids
    if len(ids) <= budget:
        return list(ids), False
    tokens = encoding.tokens
    for end in range(budget, 0, -1):
        if "Ċ" in tokens[end - 1] or "\n" in tokens[end - 1]:  # Ċ: byte-level newline
            return list(ids[:end]), True
    return list(ids[:budget]), True


def _texts_of(chunk: Chunk, message: str) -> list[str]:
    """Every text of one segment, in a fixed order, for one batched encode call."""
    return [chunk.path, chunk.old_code, message, chunk.new_code] + [
        snippet.text for snippet in chunk.context]


def _segment(settings, special, chunk: Chunk, encodings, room: int,
             truncations: Counter) -> Segment:
    """One chunk's tokens; context takes what room is left after the budgeted fields."""
    path, old, message, new = encodings[:4]
    old_ids, old_cut = _cut(old, settings.budget_old)
    msg_ids, msg_cut = _cut(message, settings.budget_message)
    new_ids, new_cut = _cut(new, settings.budget_new)
    head = [special["<filename>"], *path.ids[-PATH_TOKENS:]]
    tail = [special["<commit_before>"], *old_ids, special["<commit_msg>"], *msg_ids,
            special["<commit_after>"]]
    room -= len(head) + len(tail) + len(new_ids)
    context_ids, context_counts = [], Counter()
    for snippet, encoding in zip(chunk.context, encodings[4:]):
        ids, cut = _cut(encoding, min(settings.budget_context, max(room - 1, 0)))
        if not ids or len(ids) + 1 > room:
            truncations["context_dropped"] += 1
            continue
        context_ids += [special[context_marker(snippet.kind)], *ids]
        room -= len(ids) + 1
        context_counts[snippet.kind] += 1
        truncations["context"] += cut
    truncations["old_code"] += old_cut
    truncations["message"] += msg_cut
    truncations["new_code"] += new_cut
    prefix = head + context_ids + tail
    return Segment(ids=array(ID_TYPE, prefix + new_ids).tobytes(), new_start=len(prefix),
                   path=chunk.path, item=chunk.qualname, kind=chunk.kind, change=chunk.change,
                   context_kinds=dict(context_counts), leak_keys=leak_keys(chunk),
                   field_tokens={"old_code": len(old_ids), "message": len(msg_ids),
                                 "new_code": len(new_ids), "context": len(context_ids)})


def _normalised(text: str) -> str:
    return " ".join(text.split())


def leak_keys(chunk: Chunk) -> dict:
    """Digests that find the same change again in a later split: the new code (unless
    empty, as for deletions) and the old->new pair, exactly and with whitespace collapsed."""
    keys = {}
    for mode, form in (("exact", lambda text: text), ("whitespace", _normalised)):
        old, new = form(chunk.old_code), form(chunk.new_code)
        keys[mode] = [store.digest(f"{old}\0{new}".encode())] + (
            [store.digest(new.encode())] if new else [])
    return keys


def build_token_shard(settings: Settings, tokenizer, special: dict, shard: ChunkShard,
                      repo_name: str) -> TokenShard:
    """The token shard of one commit's chunk shard: one segment per chunk."""
    started = time.perf_counter()
    chunks = shard.chunks
    per_chunk = [_texts_of(chunk, shard.message) for chunk in chunks]
    flat = [repo_name] + [text for texts in per_chunk for text in texts]
    # One batched call per commit: the Rust side encodes the batch on all cores.
    encodings = tokenizer.encode_batch(flat, add_special_tokens=False)
    name_ids = list(encodings[0].ids[:NAME_TOKENS])
    room = settings.max_length - 2 - len(name_ids)
    segments, truncations, position = [], Counter(), 1
    for chunk, texts in zip(chunks, per_chunk):
        mine = encodings[position:position + len(texts)]
        position += len(texts)
        segments.append(_segment(settings, special, chunk, mine, room, truncations))
    return TokenShard(sha=shard.sha, committer_time=shard.committer_time, name_ids=name_ids,
                      segments=segments,
                      seconds={**shard.seconds, "tokens": time.perf_counter() - started},
                      truncations=dict(sorted(truncations.items())), skipped=shard.skipped,
                      flagged=shard.flagged, missing_objects=shard.missing_objects,
                      context_counts=shard.context_counts,
                      chunk_truncations=sum(chunk.truncated for chunk in chunks))
