"""A chunk in, whether it is worth learning as a target out.

By default a chunk is not a target when the model would have nothing to write (a pure
deletion), when only whitespace or only comments changed, or when a line longer than
max_item_chars had to be cut (its old and new code would no longer be the file's). Each
is counted by reason; settings keep each kind. (Which files are read at all:
pipeline.rust.files.)
"""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.records import Chunk
from pipeline.rust.parsing import get_parser

_COMMENTS = {"line_comment", "block_comment"}


def code_tokens(text: str) -> tuple[list, list]:
    """The text's tokens as tree-sitter reads them (a string's content is one token, so its
    spaces count): all of them, and those outside comments. Two texts with the same tokens
    differ only in whitespace; with the same tokens outside comments, only in comments
    and whitespace."""
    source = text.encode()
    tokens, code, stack = [], [], [get_parser().parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.child_count == 0 or node.type in _COMMENTS:
            token = source[node.start_byte:node.end_byte]
            tokens.append(token)
            if node.type not in _COMMENTS:
                code.append(token)
        else:
            stack.extend(reversed(node.children))
    return tokens, code


def chunk_skip_reason(chunk: Chunk, settings: Settings) -> str | None:
    """Why a chunk is not a target (None: it is)."""
    if chunk.truncated:
        return "line_over_max_item_chars"
    if not chunk.new_code.strip() and not settings.keep_deletions:
        return "deletion"
    if settings.keep_whitespace_changes and settings.keep_comment_changes:
        return None
    old_tokens, old_code = code_tokens(chunk.old_code)
    new_tokens, new_code = code_tokens(chunk.new_code)
    if old_tokens == new_tokens:
        return None if settings.keep_whitespace_changes else "whitespace_only"
    if old_code == new_code and not settings.keep_comment_changes:
        return "comment_only"
    return None
