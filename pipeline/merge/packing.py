"""One commit's kept segments in, its examples out: as many segments per row as fit.

An example is `<reponame>NAME`, then as many of one commit's segments as fit max_length,
then `<|endoftext|>`; a commit whose segments do not fit in one example becomes several.
Examples never mix commits. The loss spans cover each segment's new code and the closing
<|endoftext|> (the whole example with loss_on_all). Packing is the merge's, since the
leakage guard decides first which segments are kept.
"""

from __future__ import annotations

from array import array

from pipeline.records import Example, Segment
from pipeline.tokens.segments import ID_TYPE
from pipeline.tokens.tokenizer import END_OF_TEXT


def segment_length(segment: Segment) -> int:
    return len(segment.ids) // array(ID_TYPE).itemsize


def _example(settings, special, name_ids: list, segments: list) -> Example:
    """Segments of one commit joined into one example, with their loss spans."""
    input_ids, spans = array(ID_TYPE, [special["<reponame>"], *name_ids]), []
    for segment in segments:
        spans.append([len(input_ids) + segment.new_start,
                      len(input_ids) + segment_length(segment)])
        input_ids.frombytes(segment.ids)
    input_ids.append(special[END_OF_TEXT])
    spans[-1][1] += 1                                   # the closing <|endoftext|>
    if settings.loss_on_all:
        spans = [[0, len(input_ids)]]
    return Example(input_ids=input_ids, loss_spans=spans,
                   paths=[s.path for s in segments], items=[s.item for s in segments])


def pack_examples(settings, special, name_ids: list, segments: list) -> list:
    """One commit's segments as examples: greedily filled while they fit max_length."""
    fixed = 2 + len(name_ids)                           # <reponame>NAME ... <|endoftext|>
    examples, current, used = [], [], fixed
    for segment in segments:
        if current and used + segment_length(segment) > settings.max_length:
            examples.append(_example(settings, special, name_ids, current))
            current, used = [], fixed
        current.append(segment)
        used += segment_length(segment)
    if current:
        examples.append(_example(settings, special, name_ids, current))
    return examples
