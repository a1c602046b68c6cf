"""One commit's kept segments in, its examples out: as many segments per row as fit.

An example is the repository marker and name, then as many of one commit's segments as
fit max_length, then end-of-text; a commit whose segments do not fit in one example
becomes several. Examples never mix commits. Within a row each thing appears once: a
context snippet (a file's imports, a definition) already shown is not shown again (nor a
file's imports after its file-level segment, whose old code holds them), and the
characters it would have taken go to the chunk's spare snippets; the message is given
with the row's first segment, later ones keep the empty message/after marker pair so every
segment has StarCoder's commit layout. Loss is on each segment's new code and on the token
that ends it (the next segment's file marker, or end-of-text), so a model learns where a
change ends; on the whole example with loss_on_all. Packing is the merge's, since the
leakage guard decides first which segments are kept.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from pipeline.records import Example, Segment
from pipeline.tokens.layout import Layout
from pipeline.tokens.text_ids import ID_TYPE, id_count


@dataclass
class Row:
    """A row being filled: its ids, loss spans and what it already shows."""
    input_ids: array
    name_length: int
    spans: list = field(default_factory=list)
    shown: set = field(default_factory=set)        # context keys
    files: set = field(default_factory=set)        # paths whose file-level code it shows
    parts: list = field(default_factory=list)      # (segment, pieces shown, with message)
    dropped: int = 0


def _choose_context(segment: Segment, row: Row, room: int) -> tuple[list, int]:
    """The segment's pieces to show in row, but those it shows already (a file's imports
    too where its file-level code is shown: their old code), within room tokens; and how
    many were dropped for lack of room."""
    chosen, freed = [], 0
    for piece in segment.context:
        if piece.spare:
            if piece.key not in row.shown and piece.chars <= freed:
                chosen.append(piece)
                freed -= piece.chars
        elif piece.key in row.shown or (piece.kind == "import" and piece.path in row.files):
            freed += piece.chars            # shown already: its room goes to spare ones
        else:
            chosen.append(piece)
    kept, used = [], 0
    for piece in chosen:
        if used + id_count(piece.ids) <= room:
            kept.append(piece)
            used += id_count(piece.ids)
    return kept, len(chosen) - len(kept)


def _segment_ids(settings, layout: Layout, segment: Segment, row: Row, message: bytes):
    """(ids before the new code, context pieces, dropped) of segment as row's next one."""
    first = not row.parts
    middle = array(ID_TYPE, layout.ids["message"])
    if first:
        middle.frombytes(message)
    middle.extend(layout.ids["after"])
    core = id_count(segment.head) + id_count(segment.old) + len(middle) + id_count(segment.new)
    # Context takes the room the segment would leave if it were alone in a row.
    room = settings.max_length - (len(layout.ids["repo"]) + 1 + row.name_length) - core
    pieces, dropped = _choose_context(segment, row, max(room, 0))
    prefix = array(ID_TYPE)
    prefix.frombytes(segment.head)
    for piece in pieces:
        prefix.frombytes(piece.ids)
    prefix.frombytes(segment.old)
    prefix += middle
    return prefix, pieces, dropped


def _add(layout: Layout, row: Row, segment: Segment, prefix: array, pieces: list,
         dropped: int) -> None:
    if row.spans:               # the previous segment ends at this one's file marker
        row.spans[-1][1] += len(layout.ids["file"])
    start = len(row.input_ids) + len(prefix)
    row.input_ids += prefix
    row.input_ids.frombytes(segment.new)
    row.spans.append([start, len(row.input_ids)])
    row.shown.update(piece.key for piece in pieces)
    if segment.kind == "file":
        row.files.add(segment.path)
    row.parts.append((segment, pieces, not row.parts))
    row.dropped += dropped


def _new_row(layout: Layout, name_ids: list) -> Row:
    return Row(array(ID_TYPE, [*layout.ids["repo"], *name_ids]), len(name_ids))


def _example(settings, layout: Layout, row: Row) -> Example:
    row.input_ids.append(layout.end_id)
    row.spans[-1][1] += 1                               # the closing end-of-text
    spans = [[0, len(row.input_ids)]] if settings.loss_on_all else row.spans
    return Example(input_ids=row.input_ids, loss_spans=spans,
                   paths=[s.path for s, _, _ in row.parts],
                   items=[s.item for s, _, _ in row.parts],
                   parts=row.parts, context_dropped=row.dropped)


def pack_examples(settings, layout: Layout, name_ids: list, message: bytes,
                  segments: list, counts) -> list:
    """One commit's segments as examples: greedily filled while they fit max_length. A
    segment that does not fit even alone is left out, counted in counts."""
    examples, row = [], _new_row(layout, name_ids)
    for segment in segments:
        prefix, pieces, dropped = _segment_ids(settings, layout, segment, row, message)
        if row.parts and (len(row.input_ids) + len(prefix) + id_count(segment.new) + 1
                          > settings.max_length):
            examples.append(_example(settings, layout, row))
            row = _new_row(layout, name_ids)
            prefix, pieces, dropped = _segment_ids(settings, layout, segment, row, message)
        if len(row.input_ids) + len(prefix) + id_count(segment.new) + 1 > settings.max_length:
            counts["segment_over_max_length"] += 1
            continue
        _add(layout, row, segment, prefix, pieces, dropped)
    if row.parts:
        examples.append(_example(settings, layout, row))
    return examples
