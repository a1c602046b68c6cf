"""A chunk shard and a tokenizer in, the commit's token shard out: one example per chunk.

Layout, in StarCoder's commit format with context markers:
    <reponame>NAME<filename>PATH<ctx_KIND>SNIPPET...
    <commit_before>OLD<commit_msg>MESSAGE<commit_after>NEW<|endoftext|>
Each field has a token budget and is cut at a line boundary where one fits; the loss span
covers the new code and the closing <|endoftext|> (the whole example with loss_on_all).
"""

from __future__ import annotations

from collections import Counter

from pipeline import cache
from pipeline.config import Settings
from pipeline.tokenizing import END_OF_TEXT, context_marker

# Bump when the example layout changes: part of every token shard's key.
FORMAT_VERSION = 1
# Repository name and path get fixed budgets, so fields + these always fit max_length.
NAME_TOKENS, PATH_TOKENS = 16, 44


def token_shard_key(settings: Settings, chunk_key: str, tokenizer_hash: str) -> str:
    """A chunk shard is a pure function of its key, so its key stands for its content."""
    return cache.content_key([chunk_key, tokenizer_hash,
                              settings.section_hash(settings.format_section()), FORMAT_VERSION])


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


def _texts_of(chunk: dict, message: str, repo_name: str) -> list[str]:
    """Every text of one example, in a fixed order, for one batched encode call."""
    return [repo_name, chunk["path"], chunk["old_code"], message, chunk["new_code"]] + [
        snippet["text"] for snippet in chunk["context"]]


def _assemble(settings, special, chunk, encodings, truncations: Counter) -> dict:
    name, path, old, message, new = encodings[:5]
    old_ids, old_cut = _cut(old, settings.budget_old)
    msg_ids, msg_cut = _cut(message, settings.budget_message)
    new_ids, new_cut = _cut(new, settings.budget_new)
    head = [special["<reponame>"], *name.ids[:NAME_TOKENS], special["<filename>"],
            *path.ids[-PATH_TOKENS:]]
    tail = [special["<commit_before>"], *old_ids, special["<commit_msg>"], *msg_ids,
            special["<commit_after>"]]
    room = settings.max_length - len(head) - len(tail) - len(new_ids) - 1
    context_ids, context_counts = [], Counter()
    for snippet, encoding in zip(chunk["context"], encodings[5:]):
        ids, cut = _cut(encoding, min(settings.budget_context, max(room - 1, 0)))
        if not ids or len(ids) + 1 > room:
            truncations["context_dropped"] += 1
            continue
        context_ids += [special[context_marker(snippet["kind"])], *ids]
        room -= len(ids) + 1
        context_counts[snippet["kind"]] += 1
        truncations["context"] += cut
    prefix = head + context_ids + tail
    input_ids = prefix + new_ids + [special[END_OF_TEXT]]
    truncations["old_code"] += old_cut
    truncations["message"] += msg_cut
    truncations["new_code"] += new_cut
    loss_start = 0 if settings.loss_on_all else len(prefix)
    return {"input_ids": input_ids, "loss_start": loss_start,
            "path": chunk["path"], "item": chunk["qualname"], "kind": chunk["kind"],
            "change": chunk["change"], "context_kinds": dict(context_counts),
            "field_tokens": {"old_code": len(old_ids), "message": len(msg_ids),
                             "new_code": len(new_ids), "context": len(context_ids)}}


def build_examples(settings: Settings, tokenizer, special: dict, shard: dict,
                   repo_name: str) -> dict:
    """The token shard of one commit's chunk shard."""
    chunks = shard["chunks"]
    per_chunk = [_texts_of(chunk, shard["message"], repo_name) for chunk in chunks]
    flat = [text for texts in per_chunk for text in texts]
    encodings = tokenizer.encode_batch(flat, add_special_tokens=False) if flat else []
    examples, truncations, position = [], Counter(), 0
    for chunk, texts in zip(chunks, per_chunk):
        mine = encodings[position:position + len(texts)]
        position += len(texts)
        examples.append(_assemble(settings, special, chunk, mine, truncations))
    return {"sha": shard["sha"], "committer_time": shard["committer_time"],
            "examples": examples, "truncations": dict(sorted(truncations.items())),
            "skipped": shard["skipped"], "flagged": shard["flagged"],
            "context_counts": shard["context_counts"],
            "chunk_truncations": sum(
                chunk["truncated"] for chunk in chunks)}
