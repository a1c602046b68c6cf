"""A chunk in, whether it is worth learning as a target out.

By default a chunk is not a target when the model would have nothing to write (a pure
deletion), when only whitespace (indentation inside strings too) or trailing commas
changed (a reflow) or a file's imports were only sorted, when only comments changed, when
a line longer than max_item_chars had to be cut (its old and new code would no longer be
the file's), or when an earlier chunk of its commit made the same edit (a mechanical
change repeated over hundreds of items). Each is counted by reason; settings keep each
kind. (Which files are read at all: pipeline.rust.files.)
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import xxhash
from tree_sitter import Query, QueryCursor

from pipeline.config import Settings
from pipeline.records import Chunk
from pipeline.rust.parsing import LANGUAGE, get_parser
from pipeline.text import decode

_COMMENTS = {"line_comment", "block_comment"}
_COMMENT_IDS = frozenset(LANGUAGE.id_for_node_kind(kind, True) for kind in _COMMENTS)
_COMMENT_QUERY = Query(LANGUAGE, "[(line_comment) (block_comment)] @comment")
# Texts whose tokens are remembered: a chunk's old code is often the new code of a chunk
# a few commits before (an item changed again), and added items all have the empty text.
_TOKEN_MEMO_SIZE = 4096


def code_tokens(text: str) -> tuple[list, list]:
    """The text's tokens as tree-sitter reads them (a string's content is one token, so its
    spaces count): all of them, and those outside comments. Two texts with the same tokens
    differ only in whitespace; with the same tokens outside comments, only in comments
    and whitespace."""
    source = text.encode()
    tokens, code = [], []
    # A cursor walk in document order: leaves and whole comments are the tokens. It makes
    # one Node per visited node, where a stack of node.children lists made one per child.
    cursor = get_parser().parse(source).walk()
    while True:
        node = cursor.node
        if node.kind_id in _COMMENT_IDS:
            tokens.append(source[node.start_byte:node.end_byte])
        elif cursor.goto_first_child():
            continue
        else:
            token = source[node.start_byte:node.end_byte]
            tokens.append(token)
            code.append(token)
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return tokens, code


def _joined(tokens: list) -> tuple[int, bytes]:
    """The tokens as their count and the digest of their bytes joined by 0xFF, a byte that
    UTF-8 (what the texts are encoded in) never holds: equal when the lists are, and 16
    bytes to keep however long the text (the memo holds thousands)."""
    return len(tokens), xxhash.xxh3_128_digest(b"\xff".join(tokens))


@lru_cache(maxsize=_TOKEN_MEMO_SIZE)
def _token_keys(text: str) -> tuple[tuple, tuple]:
    """code_tokens(text), each list joined: what the whitespace and comment checks compare,
    computed once per text in a process."""
    tokens, code = code_tokens(text)
    return _joined(tokens), _joined(code)


def _code_characters_between(tree, source: bytes, start: int, end: int) -> str:
    """source[start:end]'s characters outside comments (as tree reads them) and outside
    whitespace, the comments found by a query (C speed, no walk in Python)."""
    cursor = QueryCursor(_COMMENT_QUERY)
    cursor.set_byte_range(start, end)
    comments = cursor.captures(tree.root_node).get("comment", [])
    kept, at = [], start
    for node in sorted(comments, key=lambda node: node.start_byte):
        if node.end_byte > at:
            kept.append(source[at:max(at, node.start_byte)])
            at = min(node.end_byte, end)
    kept.append(source[at:end])
    return "".join(decode(b"".join(kept)).split())


@lru_cache(maxsize=_TOKEN_MEMO_SIZE)
def _text_code_characters(text: str) -> str:
    source = text.encode()
    return _code_characters_between(get_parser().parse(source), source, 0, len(source))


def _code_characters(text: str, sources: dict) -> str:
    """text's characters outside comments and whitespace. A whitespace change leaves them as
    they were, so texts whose code characters differ differ in code: most changed items are
    told apart so, without walking their tokens. A text with no comment marker has no
    comment (most of them: no parse at all); else they are read off the tree of the file
    version it was cut from when sources (text -> (parsed file, start, end)) has it, else
    off a parse of the text alone."""
    if "//" not in text and "/*" not in text:
        return "".join(text.split())
    found = sources.get(text)
    if found is None:
        return _text_code_characters(text)
    file, start, end = found
    return _code_characters_between(file.tree, file.source, start, end)


def chunk_skip_reason(chunk: Chunk, settings: Settings, sources: dict | None = None) -> str | None:
    """Why a chunk is not a target (None: it is). sources: text -> (parsed file, start,
    end) of the file versions the chunk's texts may have been cut from."""
    if chunk.truncated:
        return "line_over_max_item_chars"
    if not chunk.new_code.strip() and not settings.keep_deletions:
        return "deletion"
    if settings.keep_whitespace_changes and settings.keep_comment_changes:
        return None
    sources = sources or {}
    old_characters = _code_characters(chunk.old_code, sources)
    new_characters = _code_characters(chunk.new_code, sources)
    if old_characters != new_characters:
        if settings.keep_whitespace_changes or not _reformatted(chunk, old_characters,
                                                                new_characters):
            return None
        return "formatting_only"
    if _stripped_lines(chunk.old_code) == _stripped_lines(chunk.new_code):
        # Lines re-indented, string literals' lines too (cargo re-indented the raw strings
        # of 999 tests in one commit): tokens would tell a string's spaces apart.
        return None if settings.keep_whitespace_changes else "whitespace_only"
    old_tokens, old_code = _token_keys(chunk.old_code)
    new_tokens, new_code = _token_keys(chunk.new_code)
    if old_tokens == new_tokens:
        return None if settings.keep_whitespace_changes else "whitespace_only"
    if old_code == new_code and not settings.keep_comment_changes:
        return "comment_only"
    return None


# A comma just before a closing bracket, in a text's code characters: rustfmt adds or drops
# such commas as it reflows a list onto lines or back (cargo's `cargo fmt` commit: 1,118 of
# its chunks changed only so).
_TRAILING_COMMA = re.compile(r",(?=[)\]}>])")
_CLOSING = frozenset({")", "]", "}", ">"})
_TUPLES = frozenset({"tuple_expression", "tuple_type", "tuple_pattern"})
# A string's escaped line end: the string goes on after the next line's indentation.
_CONTINUATIONS = frozenset({b"\\\n", b"\\\r\n"})


@lru_cache(maxsize=_TOKEN_MEMO_SIZE)
def _reflowed_tokens(text: str) -> tuple:
    """The text's tokens (comments too, as code_tokens) without its trailing commas, but
    for a one-element tuple's `(x,)`, and a string's lines after an escaped line end
    without their indentation: a list reflowed by rustfmt has the same."""
    source = text.encode()
    tokens = []
    cursor = get_parser().parse(source).walk()
    while True:
        node = cursor.node
        if node.kind_id in _COMMENT_IDS or not cursor.goto_first_child():
            token = source[node.start_byte:node.end_byte]
            if tokens and tokens[-1] in _CONTINUATIONS and node.type == "string_content":
                token = token.lstrip()   # Rust skips the whitespace after a `\` line end
            if not (node.type == "," and _trailing(node)):
                tokens.append(token)
            while not cursor.goto_next_sibling():
                if not cursor.goto_parent():
                    return tuple(tokens)


def _trailing(comma) -> bool:
    """Whether a comma is a list's last, before its closing bracket (not a one-element
    tuple's)."""
    after = comma.next_sibling
    if after is None and comma.parent.type == "match_arm":     # `A => 1,` holds its comma
        after = comma.parent.next_sibling
    if after is None or after.type not in _CLOSING:
        return False
    return not (comma.parent.type in _TUPLES and comma.parent.named_child_count == 1)


def _reformatted(chunk: Chunk, old_characters: str, new_characters: str) -> bool:
    """Whether a chunk whose code characters changed was only reformatted: a file's lines
    outside its items (imports, `mod` lines) put in another order (imports sorted), or a
    list reflowed with or without its trailing comma."""
    if chunk.kind == "file" and sorted(_stripped_lines(chunk.old_code)) == sorted(
            _stripped_lines(chunk.new_code)):
        return True
    return (_TRAILING_COMMA.sub("", old_characters) == _TRAILING_COMMA.sub("", new_characters)
            and _reflowed_tokens(chunk.old_code) == _reflowed_tokens(chunk.new_code))


def _stripped_lines(text: str) -> list:
    """text's lines without their indentation and trailing spaces, blank ones left out."""
    return [line for line in map(str.strip, text.splitlines()) if line]


def edit_key(chunk: Chunk) -> tuple | None:
    """What a modified chunk's edit is, wherever it was made: the lines it takes out and
    the lines it puts in (stripped, blank ones aside), each sorted. None for an added
    chunk (its whole text is new; the merge finds a text seen before) and for an edit
    that only moved lines."""
    if chunk.change != "modified":
        return None
    old, new = Counter(_stripped_lines(chunk.old_code)), Counter(_stripped_lines(chunk.new_code))
    taken, put = old - new, new - old
    if not taken and not put:
        return None
    return tuple(sorted(taken.elements())), tuple(sorted(put.elements()))


def first_of_each_edit(chunks: list) -> list:
    """For each chunk of one commit, in order, whether it is a target: not when an earlier
    one made the same edit. A commit that renames a test attribute or a type, or changes
    an expected message, makes one edit in hundreds of items (cargo's `#[test]` ->
    `#[cargo_test]` in 1,632): 22 % of cargo's new code was such repeats, the one edit
    learned a thousand times over."""
    seen, firsts = set(), []
    for chunk in chunks:
        key = edit_key(chunk)
        firsts.append(key is None or key not in seen)
        seen.add(key)
    return firsts
