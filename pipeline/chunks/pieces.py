"""An item's text over the size budget in, pieces cut between its syntax children out.

The children are those of the item's body: the statements of a function, the members of
an impl, the fields of a struct, the variants of an enum; a child still over budget is cut
between its own children (the arms of a large match, the statements of a nested block),
and only a child with none left is cut between lines. The pieces, joined, are the text
again: no code is dropped.
"""

from __future__ import annotations

from functools import lru_cache

from tree_sitter import Query, QueryCursor

from pipeline.rust.parsing import LANGUAGE, get_parser
from pipeline.text import decode

# Node kinds whose named children are the natural places to cut. A source_file with more
# than one is a file's lines outside its items (imports, comments; cargo's resolver/mod.rs
# had 4,269 characters of them, then kept whole, since the widest container inside was a
# `use` list on one line) or an item after its doc comments and attributes.
_CUTTABLE_NODES = ("source_file", "block", "declaration_list", "field_declaration_list", "enum_variant_list",
                   "match_block", "ordered_field_declaration_list", "token_tree", "use_list")
_CUTTABLE_QUERY = Query(LANGUAGE, "[" + " ".join(f"({kind})" for kind in _CUTTABLE_NODES)
                        + "] @container")


def _container(node):
    """The descendant of node (or node) whose children to cut between: the widest container
    inside with more than one named child; of equally wide ones the outermost, then the
    last. Found by a query (one pass in C): walking the tree node by node in Python cost
    more than the rest of the splitting, on long tables with no container at all."""
    best, best_width, best_start = None, -1, -1
    for candidate in QueryCursor(_CUTTABLE_QUERY).captures(node).get("container", ()):
        width, start = candidate.end_byte - candidate.start_byte, candidate.start_byte
        if candidate.named_child_count < 2 or width < best_width:
            continue
        # Equally wide: a later one, or one around the best so far (the same span). The
        # captures' order does not matter (inside an ERROR node it is not the file's).
        if width > best_width or start > best_start or (
                start == best_start and _encloses(candidate, best)):
            best, best_width, best_start = candidate, width, start
    return best


def _encloses(outer, inner) -> bool:
    """Whether outer is an ancestor of inner, which has the same span."""
    parent = inner.parent
    while parent is not None and parent.start_byte == inner.start_byte \
            and parent.end_byte == inner.end_byte:
        if parent.id == outer.id:
            return True
        parent = parent.parent
    return False


def _line_cuts(source: bytes, start: int, end: int, limit: int) -> list:
    """Every line start in (start, end), if the range is over limit: where no syntax child
    is left to cut between (a long table, a long string), each line is a piece. Pieces as
    long as the limit would move their bounds with every line added or removed before
    them, so that one inserted line made all the item's later pieces differ; pack() joins
    lines again."""
    if end - start <= limit:
        return []
    cuts, position = [], start
    while True:
        newline = source.find(b"\n", position, end)
        if newline < 0 or newline + 1 >= end:
            return cuts
        cuts.append(newline + 1)
        position = newline + 1


# Children that belong to what follows them when they start a line: doc and plain comments
# and attributes. A piece cut between them and their item ended with a dangling `///` or
# `#[inline]`, and the next began without them.
_LEADERS = ("line_comment", "block_comment", "attribute_item", "inner_attribute_item")


def _starts_line(source: bytes, offset: int) -> bool:
    return not source[source.rfind(b"\n", 0, offset) + 1:offset].strip()


def _cuts(source: bytes, node, start: int, end: int, limit: int) -> list:
    """Byte offsets in (start, end) at which to cut so pieces fit limit where possible."""
    if end - start <= limit:
        return []
    container = _container(node) if node is not None else None
    if container is None:
        return _line_cuts(source, start, end, limit)
    # Each piece: a child with the comments and attributes on the lines before it.
    groups: list = []
    led = False
    for child in container.named_children:
        # A child at start too (a file's first line; an item's first doc comment), or the
        # next child would start a group of its own, cut from the comments before it.
        if not start <= child.start_byte < end:
            continue
        if led:
            groups[-1].append(child)
        else:
            groups.append([child])
        led = child.type in _LEADERS and _starts_line(source, child.start_byte)
    bounds = [start] + [line_start(source, group[0].start_byte) for group in groups] + [end]
    children = [None] + [group[-1] for group in groups]
    cuts = []
    for (piece_start, piece_end), child in zip(zip(bounds, bounds[1:]), children):
        if piece_start > start:
            cuts.append(piece_start)
        cuts += _cuts(source, child, piece_start, piece_end, limit) if child is not None \
            else _line_cuts(source, piece_start, piece_end, limit)
    return sorted(set(c for c in cuts if start < c < end))


def line_start(source: bytes, offset: int) -> int:
    """Start of offset's line if only indentation precedes it, so code keeps its indentation."""
    start = source.rfind(b"\n", 0, offset) + 1
    return start if not source[start:offset].strip() else offset


# Stands for code left out: between a piece's signature and its code, between the runs of
# a file's lines outside its items. It is the only text of a chunk that is not verbatim.
ELISION = "// …"


def with_signature(piece: str, signature: str, starts_the_item: bool) -> str:
    """A piece that does not start its item, after the item's signature and an elision
    marker at the piece's indentation."""
    if starts_the_item or not piece.strip() or not signature:
        return piece
    first = next(line for line in piece.split("\n") if line.strip())
    indent = first[:len(first) - len(first.lstrip())]
    return f"{signature}\n{indent}{ELISION}\n{piece}"


def pack(pieces: list, limit: int) -> list:
    """Join neighbouring pieces greedily while the result fits limit."""
    parts: list = []
    for piece in pieces:
        if parts and len(parts[-1]) + len(piece) <= limit:
            parts[-1] += piece
        else:
            parts.append(piece)
    return parts


def split_pieces(text: str, limit: int) -> list:
    """The item's text as consecutive pieces cut between children, each within limit where
    possible; many are much smaller (one statement, one method), for pack() to join."""
    return list(_pieces(text, limit))


# An item over budget that changes again is split again, as old code, the next time:
# nearly half the texts split in a history were split before.
@lru_cache(maxsize=256)
def _pieces(text: str, limit: int) -> tuple:
    if len(text) <= limit:
        return (text,) if text else ()
    source = text.encode()
    tree = get_parser().parse(source)
    # Budgets are in characters and cuts in bytes; a byte budget of `limit` is never larger.
    # Only cuts at line starts are kept: a child that shares its line with code before it
    # (the `(...)` of `doc!(...)`, a token tree's tokens) stays with that code, or a piece
    # would begin in the middle of a call, its indentation and macro name left behind.
    cuts = [cut for cut in _cuts(source, tree.root_node, 0, len(source), limit)
            if source[cut - 1] == ord("\n")]
    bounds = [0] + cuts + [len(source)]
    return tuple(decode(source[a:b]) for a, b in zip(bounds, bounds[1:]))
