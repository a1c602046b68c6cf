"""A parsed file version in, its items as units to compare out, and how changed pairs of
units become old and new texts.

Old and new items of a file are paired by qualified name and compared by text; an impl or
trait by its text without its members (each member is a unit of its own). What lies
outside every unit (imports, comments, mod headers) is the file's residual, compared as
one more unit, so no change vanishes.
"""

from __future__ import annotations

import difflib
import functools
from typing import NamedTuple

from pipeline.chunks.pieces import ELISION, line_start
from pipeline.rust.parsing import ParsedFile
from pipeline.rust.syntax import analyse, children_by_parent
from pipeline.text import decode

# Imports (`use` lines, `extern crate`) and inline-mod headers belong to the file, not to
# units of their own: an added `extern crate url;` is one more line of the file's imports,
# not a one-line target with a gap (`// …`) left where it sat among them.
NOT_UNITS = {"use", "mod", "extern_crate"}


def _own_text(source: bytes, item: dict, children: list) -> str:
    """An item's text without its child items: for an impl, its header and non-item lines."""
    pieces, cursor = [], line_start(source, item["start_byte"])
    for child in children:
        pieces.append(source[cursor:line_start(source, child["start_byte"])])
        cursor = child["end_byte"]
    pieces.append(source[cursor:item["end_byte"]])
    return decode(b"".join(pieces))


def _memoised(function):
    """function(file), kept in the file's memo: a version changed again is the old side of
    its next change, the same ParsedFile as the new side of this one."""
    key = function.__name__

    @functools.wraps(function)
    def memoised(file: ParsedFile):
        if key not in file.memo:
            file.memo[key] = function(file)
        return file.memo[key]
    return memoised


@_memoised
def units(file: ParsedFile) -> dict:
    """qualname -> indexes of the items compared as units, in file order."""
    units: dict = {}
    for index, item in enumerate(analyse(file)["items"]):
        if item["kind"] not in NOT_UNITS:
            units.setdefault(item["qualname"], []).append(index)
    return units


def _span(file: ParsedFile, index: int) -> bytes:
    item = analyse(file)["items"][index]
    return file.source[line_start(file.source, item["start_byte"]):item["end_byte"]]


def same_bytes(old: bytes, old_item: dict, new: bytes, new_item: dict) -> bool:
    """Whether two items have the same text and the same start of line before them (so
    the same _span), by slicing alone: this runs for every item of every changed file."""
    old_start, new_start = old_item["start_byte"], new_item["start_byte"]
    return (old[old_start:old_item["end_byte"]] == new[new_start:new_item["end_byte"]]
            and old[old.rfind(b"\n", 0, old_start) + 1:old_start]
            == new[new.rfind(b"\n", 0, new_start) + 1:new_start])


class Unit(NamedTuple):
    """One side of an item compared as a unit."""
    item: dict | None          # None: the item does not exist on this side
    text: str                  # its verbatim span, doc comments and attributes included
    comparable: str | None     # what decides whether the item changed
    place: tuple | None        # (parsed file, item index)
    container: bool = False    # an impl or trait: its members are units of their own


def as_unit(file: ParsedFile, index: int) -> Unit:
    """The unit of item index of file.

    An impl or trait counts as changed when its text without its members changed (more
    than whitespace): a changed member is a chunk of its own.
    """
    items = analyse(file)["items"]
    if "children" not in file.memo:
        file.memo["children"] = children_by_parent(items)
    item, children = items[index], file.memo["children"]
    text = decode(_span(file, index))
    if index in children:
        own = _own_text(file.source, item, children[index])
        return Unit(item, text, " ".join(own.split()), (file, index), True)
    return Unit(item, text, text, (file, index), False)


_ABSENT = Unit(None, "", None, None, False)


def text_source(unit: Unit) -> tuple | None:
    """(parsed file, start, end) of the bytes unit.text was decoded from; None if there are
    none, or if decoding replaced some (its text is then not those bytes)."""
    if unit.place is None or unit.container:
        return None
    file, index = unit.place
    if analyse(file)["decode_errors"]:
        return None
    item = analyse(file)["items"][index]
    return file, line_start(file.source, item["start_byte"]), item["end_byte"]


def changed_pairs(olds: list, news: list):
    """(old unit, new unit) for each change among units sharing a qualified name.

    Usually one each; a name repeated in a file (`rgtest!` invocations, cfg'd twins) is
    aligned by content, so inserting one in the middle is one addition, not a shift that
    pairs every later one with its neighbour.
    """
    if len(olds) <= 1 and len(news) <= 1:
        old, new = (olds or [_ABSENT])[0], (news or [_ABSENT])[0]
        if old.comparable != new.comparable:
            yield old, new
        return
    matcher = difflib.SequenceMatcher(None, [u.comparable for u in olds],
                                      [u.comparable for u in news], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            yield from _run_pairs(olds[i1:i2], news[j1:j2])


def _first_code_line(unit: Unit) -> str:
    """A unit's first line after its docs and attributes: `test!(builds_twice {`."""
    for line in unit.text.split("\n"):
        if line.strip() and not line.lstrip().startswith(("//", "#[", "/*", "*")):
            return line.strip()
    return ""


def _run_pairs(old_run: list, new_run: list):
    """Pairs of a run of units that changed among others of their name: those whose first
    lines agree first (cargo's 51432d488a inserts `test!(cargo_test_failing_test {` before
    a `test!(test_with_lib_dep {` it edits: the edit is paired with its own old version,
    not with the inserted test), the rest in order, the unpaired ones added or removed."""
    lines = difflib.SequenceMatcher(None, [_first_code_line(u) for u in old_run],
                                    [_first_code_line(u) for u in new_run], autojunk=False)
    for tag, i1, i2, j1, j2 in lines.get_opcodes():
        olds, news = old_run[i1:i2], new_run[j1:j2]
        for k in range(max(len(olds), len(news))):
            yield (olds[k] if k < len(olds) else _ABSENT, news[k] if k < len(news) else _ABSENT)


@_memoised
def residual(file: ParsedFile) -> str:
    """The file's lines that lie in no unit (imports, comments, mod headers), each run of
    them verbatim, an elision marker where units were left out between two runs."""
    lines = file.source.split(b"\n")
    items = analyse(file)["items"]
    covered = sorted((item["start_line"] - 1, min(item["end_line"], len(lines)))
                     for item in items
                     if item["kind"] not in NOT_UNITS and (
                         item["parent"] < 0 or items[item["parent"]]["kind"] == "mod"))
    runs, cursor = [], 0
    for start, end in covered:              # rows [start, end) belong to a unit
        runs.append(b"\n".join(lines[cursor:start]).strip(b"\n"))
        cursor = max(cursor, end)
    runs.append(b"\n".join(lines[cursor:]).strip(b"\n"))
    return f"\n{ELISION}\n".join(decode(run) for run in runs if run.strip())


def code_lines(text: str) -> list:
    """What decides whether the residual changed: its non-blank lines, markers aside."""
    return [line for line in text.split("\n") if line.strip() and line != ELISION]


def inside(unit: Unit, whole: set) -> bool:
    """Whether unit is a member of a container that is a chunk whole."""
    if unit.place is None:
        return False
    file, index = unit.place
    return (id(file), unit.item["parent"]) in whole


def _header(unit: Unit) -> str:
    """An item's verbatim text up to its body: docs, attributes and signature."""
    file, index = unit.place
    start = line_start(file.source, unit.item["start_byte"])
    return decode(file.source[start:unit.item["body_start"]]).rstrip()


def _signature(unit: Unit) -> str:
    """An item's header without its docs and attributes, opening its body: what a piece of
    the item carries so that it says where it belongs."""
    if unit.place is None:
        return ""
    lines = _header(unit).split("\n")
    while len(lines) > 1 and lines[0].lstrip().startswith(("///", "//!", "#[", "//")):
        lines.pop(0)
    if unit.item["body_start"] >= unit.item["end_byte"]:
        return lines[0]       # no body to open (a macro): its first line says what it is
    # The body's own first line as the file has it: `{`, or `&[` of a const's value.
    file, _ = unit.place
    body, end = unit.item["body_start"], unit.item["end_byte"]
    line_end = file.source.find(b"\n", body, end)
    opening = decode(file.source[body:line_end if line_end >= 0 else end])
    return "\n".join(lines) + " " + opening.strip()


def signatures(old_unit: Unit, new_unit: Unit) -> tuple:
    return _signature(old_unit), _signature(new_unit)


def pair_texts(old_unit: Unit, new_unit: Unit, whole: set) -> tuple | None:
    """(old text, new text) of a changed pair. A container added or deleted is one chunk
    with its members (which are then not chunks of their own); a container changed
    outside its members is its header (None if only comments or blank lines changed)."""
    if not (old_unit.container or new_unit.container):
        return old_unit.text, new_unit.text
    if old_unit.item is None or new_unit.item is None:
        file, index = (new_unit if new_unit.item is not None else old_unit).place
        whole.add((id(file), index))
        return old_unit.text, new_unit.text
    old_header, new_header = _header(old_unit), _header(new_unit)
    return (old_header, new_header) if old_header != new_header else None
