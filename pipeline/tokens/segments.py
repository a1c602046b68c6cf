"""A chunk shard and a tokenizer in, the commit's token shard (one segment per chunk) out.

One segment per chunk, in StarCoder's commit format with context markers:
    <filename>PATH<ctx_KIND>SNIPPET...<commit_before>OLD<commit_msg>MESSAGE<commit_after>NEW
A segment keeps its parts apart (file name, each context snippet, old code, new code) and
the shard the commit's message once: the merge (pipeline.merge.packing) joins them into
rows, showing each snippet and the message once per row. Old code, new code and message
have token budgets and are cut at a line boundary where one fits.
"""

from __future__ import annotations

import functools
import re
import time
from array import array
from collections import Counter
from pathlib import Path

from pipeline import store
from pipeline.chunks.shard import shard_key
from pipeline.config import Settings
from pipeline.records import Chunk, ChunkShard, ContextPiece, Segment, Snippet, TokenShard
from pipeline.tokens.layout import Layout
from pipeline.tokens.text_ids import ID_TYPE, TextIds

# Bump when the example layout changes: part of every token shard's key.
FORMAT_VERSION = 8
# Repository name and path get fixed budgets, so fields + these always fit max_length.
NAME_TOKENS, PATH_TOKENS = 16, 44


def _key_parts(settings: Settings, tokenizer_hash: str) -> list:
    """What a token shard's key holds besides its chunk shard's key: the tokenizer, the
    stage's settings and the layout's version."""
    return [tokenizer_hash, settings.section_hash(settings.format_section()), FORMAT_VERSION]


def token_shard_key(settings: Settings, chunk_key: str, tokenizer_hash: str) -> str:
    """A chunk shard is a pure function of its key, so its key stands for its content."""
    return store.content_key([chunk_key, *_key_parts(settings, tokenizer_hash)])


def token_shard_keys(settings: Settings, chunk_keys: dict, tokenizer_hash: str) -> dict:
    """sha -> token_shard_key of each (sha -> chunk shard key), the settings hashed once."""
    parts = _key_parts(settings, tokenizer_hash)
    return {sha: store.content_key([chunk_key, *parts]) for sha, chunk_key in chunk_keys.items()}


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


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A snippet the same commit adds or changes, not the parent's, says so in plain text.
SAME_COMMIT_NOTE = "// changed in this commit\n"


def _snippet_text(snippet: Snippet) -> str:
    return (SAME_COMMIT_NOTE if snippet.origin == "commit" else "") + snippet.text


def _texts_of(chunk: Chunk) -> list[str]:
    """Every text of one segment, in a fixed order, for one batched encode call."""
    return [chunk.path, chunk.old_code, chunk.new_code] + [
        _snippet_text(snippet) for snippet in chunk.context + chunk.spare_context]


def _ids(values) -> bytes:
    return array(ID_TYPE, values).tobytes()


@functools.lru_cache(maxsize=64)
def _marker(ids: tuple) -> bytes:
    return _ids(ids)


def _joined(marker: list, ids: array) -> bytes:
    """A marker's ids, then ids, as int32 bytes."""
    return _marker(tuple(marker)) + ids.tobytes()


def _cut_at_line_end(ids: array, budget: int, line_end_ids: frozenset) -> array | None:
    """ids cut after the last token within budget that holds a line break, if any."""
    for end in range(budget, 0, -1):
        if ids[end - 1] in line_end_ids:
            return ids[:end]
    return None


def _cut_imports(ids: array, budget: int, layout: Layout) -> array | None:
    """An import list over budget as its first whole lines, then the elision marker that
    says lines were left out (the list's own marker, at its end, went with the tail)."""
    marker = layout.elision_ids
    cut = _cut_at_line_end(ids, budget - len(marker), layout.line_end_ids)
    return None if cut is None else cut + array(cut.typecode, marker)


def _context(settings, layout: Layout, chunk: Chunk, ids: list, truncations: Counter) -> list:
    """The chunk's snippets as pieces (marker + text ids), in priority order. A definition
    over budget_context is left out, not cut: a cut one might not be valid Rust; a list of
    imports is cut after its last whole line within the budget."""
    pieces = []
    snippets = chunk.context + chunk.spare_context
    for number, (snippet, snippet_ids) in enumerate(zip(snippets, ids)):
        if len(snippet_ids) > settings.budget_context and snippet.kind == "import":
            snippet_ids = _cut_imports(snippet_ids, settings.budget_context, layout)
            truncations["import_context_cut" if snippet_ids else "context_over_budget"] += 1
        elif len(snippet_ids) > settings.budget_context:
            truncations["context_over_budget"] += 1
            continue
        if not snippet_ids:
            continue
        key = store.content_key([snippet.kind, snippet.path, snippet.name, snippet.text])
        pieces.append(ContextPiece(
            key=key, kind=snippet.kind, path=snippet.path, name=snippet.name,
            origin=snippet.origin, chars=len(snippet.text), spare=number >= len(chunk.context),
            ids=_joined(layout.context(snippet.kind), snippet_ids)))
    return pieces


def _segment(settings, layout: Layout, chunk: Chunk, ids: list,
             truncations: Counter) -> Segment | None:
    """One chunk's tokens (ids: those of its texts, as _texts_of lists them): file name,
    context pieces, old code and new code; the merge joins them with the message (once per
    row) into examples. None when old or new code is over its budget: cutting one side
    would teach lines the model never saw, or an end that is not the change's."""
    path, old, new = ids[:3]
    if len(old) > settings.budget_old or len(new) > settings.budget_new:
        truncations["code_over_budget"] += 1
        return None
    return Segment(head=_joined(layout.ids["file"], path[-PATH_TOKENS:]),
                   context=_context(settings, layout, chunk, ids[3:], truncations),
                   old=_joined(layout.ids["before"], old), new=new.tobytes(),
                   path=chunk.path, item=chunk.qualname, kind=chunk.kind, change=chunk.change,
                   leak_keys=leak_keys(chunk), target_key=store.digest(chunk.new_code.encode()),
                   field_tokens={"old_code": len(old), "new_code": len(new)})


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


def _message(settings, text_ids: TextIds, encoding, truncations: Counter) -> bytes:
    """The message's ids within budget_message; a cut one ends with a visible ` …`."""
    ids, cut = _cut(encoding, settings.budget_message - 4)
    if cut:
        truncations["message"] += 1
        ids += text_ids.encode([" …"])[0][0]
    return _ids(ids)


def redact(message: str) -> str:
    """E-mail addresses in a message become `<EMAIL>` (StarCoder's convention)."""
    return EMAIL.sub("<EMAIL>", message)


def plain_token_shard(shard: TokenShard) -> dict:
    """to_plain(shard), field for field, for the store: built directly, without checking
    each of its many values for being a record (which cost a sixth of the stage)."""
    segments = [{**vars(segment), "context": [dict(vars(piece)) for piece in segment.context]}
                for segment in shard.segments]
    return {**vars(shard), "segments": segments, "missing_objects": list(shard.missing_objects)}


def build_token_shard(settings: Settings, tokenizer, layout: Layout, shard: ChunkShard,
                      text_ids: TextIds | None = None) -> TokenShard:
    """The token shard of one commit's chunk shard: one segment per chunk (but those over
    budget, counted). text_ids: the process's remembered encodings of tokenizer (a Worker
    keeps one across commits), else a new one for this shard."""
    started = time.perf_counter()
    if text_ids is None:
        text_ids = TextIds(tokenizer)
    per_chunk = [_texts_of(chunk) for chunk in shard.chunks]
    # The texts not remembered, encoded in one batch per commit (the message in another).
    ids, (message_encoding,) = text_ids.encode(
        [text for texts in per_chunk for text in texts], [redact(shard.message)])
    truncations, segments, position = Counter(), [], 0
    message = _message(settings, text_ids, message_encoding, truncations)
    for chunk, texts in zip(shard.chunks, per_chunk):
        mine = ids[position:position + len(texts)]
        position += len(texts)
        segment = _segment(settings, layout, chunk, mine, truncations)
        if segment is not None:
            segments.append(segment)
    return TokenShard(sha=shard.sha, committer_time=shard.committer_time, message=message,
                      segments=segments,
                      seconds={**shard.seconds, "tokens": time.perf_counter() - started},
                      truncations=dict(sorted(truncations.items())), skipped=shard.skipped,
                      flagged=shard.flagged, missing_objects=shard.missing_objects,
                      context_counts=shard.context_counts)
