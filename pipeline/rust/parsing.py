"""Rust file bytes in, a tree-sitter syntax tree out: parsed once, incrementally from the
file's previous version where there is one.

The language, the parser and the compiled queries are built once per process: building a
parser costs far more than parsing a small file.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from dataclasses import dataclass
from itertools import accumulate

import tree_sitter_rust
from tree_sitter import Language, Parser, Tree

from pipeline.text import decode

LANGUAGE = Language(tree_sitter_rust.language())
_parser: Parser | None = None


def get_parser() -> Parser:
    """One parser per process: building it costs far more than a parse of a small file."""
    global _parser
    if _parser is None:
        _parser = Parser(LANGUAGE)
    return _parser


# tree-sitter-rust reads `try` as the 2018 keyword and a primitive type's name as that type,
# so 2015-edition `try!(...)` and a macro named like a type (snapbox's `str![...]`, all over
# cargo's tests since 2024) would be syntax errors, and their whole file would fall back to
# line windows. The parser sees a same-length macro name instead (`tr_!`, `st_!`); offsets
# do not move and every text is still sliced from the original bytes.
# A macro's name as it ends at a `!`, and what must follow the `!` for it to be a macro call.
_MACRO_NAME = re.compile(rb"(?:try|str|bool|char|[iu](?:8|16|32|64|128|size)|f32|f64)\Z")
_MACRO_CALL = re.compile(rb"!\s*[(\[{]")
_LONGEST_NAME = len(b"usize")
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
# The last byte of each of those names: only a `!` after one of them is checked.
_NAME_ENDS = frozenset(b"yrl8624e")


def _renamed_macros(source: bytes) -> bytes:
    """source with the last letter of each such macro's name made `_`. One split at every
    `!` (C speed), and only a `!` after a name's last byte is checked where it lies: a
    bytes.find per name took 2.2 s on 388 MB of cargo's file versions, whose tests call
    `str![...]` throughout, and this 0.33-0.57 s (a regex pass: 2.5 s)."""
    pieces = source.split(b"!")
    renamed, bang = None, -1
    for piece in pieces[:-1]:
        bang += len(piece) + 1
        if not piece or piece[-1] not in _NAME_ENDS:
            continue
        name = _MACRO_NAME.search(source, max(0, bang - _LONGEST_NAME), bang)
        # A name is whole when no word character comes before it (the leftmost one found
        # is the longest: any shorter one starts within it, after a word character).
        if name is None or (name.start() and source[name.start() - 1] in _WORD_BYTES):
            continue
        if _MACRO_CALL.match(source, bang):
            renamed = renamed or bytearray(source)
            renamed[bang - 1] = ord("_")
    return source if renamed is None else bytes(renamed)


def node_text(source: bytes, node) -> str:
    """A node's text from the file's own bytes: the parser's have some macros renamed, at
    the same offsets (node.text would give the renamed name)."""
    return decode(source[node.start_byte:node.end_byte])


@dataclass(eq=False)
class ParsedFile:
    """One version of a Rust file and its syntax tree (None: the parse did not finish)."""
    source: bytes
    parsed: bytes                  # what the parser saw: macros renamed, offsets unchanged
    tree: Tree | None
    # The analysis and per-item facts, each computed once.
    memo: dict = dataclasses.field(default_factory=dict)
    blob: str = ""                 # its git blob id, when known


def common_prefix(old, new) -> int:
    """Length of the longest common prefix of two byte strings or lists, by binary search
    over slice comparisons (C speed)."""
    # For bytes, startswith copies one slice, where == of two slices copies both.
    same_head = old.startswith if isinstance(old, bytes) else lambda head: old[:len(head)] == head
    return _longest(lambda length: same_head(new[:length]), min(len(old), len(new)))


def common_suffix(old, new) -> int:
    """Length of the longest common suffix of two byte strings or lists, as common_prefix:
    no reversed copies of whole files."""
    same_tail = old.endswith if isinstance(old, bytes) else \
        lambda tail: old[len(old) - len(tail):] == tail
    return _longest(lambda length: same_tail(new[len(new) - length:]), min(len(old), len(new)))


def _longest(holds, most: int) -> int:
    """The largest length in [0, most] for which holds(length) is true, holds being true
    up to some length and false after it (holds(0) is taken to be true)."""
    low, high = 0, most
    while low < high:
        middle = (low + high + 1) // 2
        if holds(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _point(source: bytes, offset: int) -> tuple[int, int]:
    return source.count(b"\n", 0, offset), offset - (source.rfind(b"\n", 0, offset) + 1)


def _span_edit(old: bytes, new: bytes) -> dict:
    """One edit covering everything from the first to the last byte that differs."""
    start = common_prefix(old, new)
    tail = common_suffix(old[start:], new[start:])
    old_end, new_end = len(old) - tail, len(new) - tail
    return {"start_byte": start, "old_end_byte": old_end, "new_end_byte": new_end,
            "start_point": _point(old, start), "old_end_point": _point(old, old_end),
            "new_end_point": _point(new, new_end)}


def _line_hunks(old: list, new: list, old_at: int, new_at: int, out: list, depth: int = 0):
    """Append (old first line, old count, new first line, new count) for runs of lines that
    differ between two line lists. Not a minimal diff: the common head and tail are cut off
    and the rest is split at a line of old's middle found again in new, recursively. Any
    such runs describe old -> new exactly, which is all the parser needs."""
    head = common_prefix(old, new)
    old, new, old_at, new_at = old[head:], new[head:], old_at + head, new_at + head
    tail = common_suffix(old, new)
    old, new = old[:len(old) - tail], new[:len(new) - tail]
    if not old and not new:
        return
    if min(len(old), len(new)) >= 16 and depth < 24:
        for k in range(len(old) // 2, min(len(old), len(old) // 2 + 8)):
            if len(old[k].strip()) < 12:          # `}` and blank lines make poor anchors
                continue
            try:
                j = new.index(old[k])
            except ValueError:
                continue
            _line_hunks(old[:k], new[:j], old_at, new_at, out, depth + 1)
            _line_hunks(old[k:], new[j:], old_at + k, new_at + j, out, depth + 1)
            return
    out.append((old_at, len(old), new_at, len(new)))


def _lines_before_tail(rest: bytes, at: int, starts_line: bool) -> list:
    """rest's lines but those within its shared tail (which starts at `at`, on a line of
    its own if starts_line): only the bytes before the tail's first newline are split, not
    the whole rest of a large file."""
    if starts_line:
        return rest[:at - 1].split(b"\n") if at else []
    return rest[:rest.find(b"\n", at)].split(b"\n")


def _hunk_edits(old: bytes, new: bytes) -> list | None:
    """One edit per run of changed lines, last first, so that each one's positions are
    still those of old (an edit spanning the first to the last change would make the parser
    redo everything in between). None if a run reaches the last line (whose end is not a
    line start): _span_edit covers that.

    The lines the versions share at their head and tail are counted on the bytes (C
    speed): only the lines between are compared, which in a large file are a few."""
    if old == new:
        return []
    shared = common_prefix(old, new)
    longer = old if len(old) > len(new) else new
    if shared == len(old) + len(new) - len(longer) and longer[shared] == ord("\n"):
        return None             # one version is the other and more lines: the last changed
    start = old.rfind(b"\n", 0, shared) + 1       # where the first changed line starts
    old_rest, new_rest = old[start:], new[start:]
    same = common_suffix(old_rest, new_rest)
    # Where the shared tail starts, and whether it starts a line in both versions (after a
    # newline, or where the changed lines start): the lines from there on are left alone.
    old_at, new_at = len(old_rest) - same, len(new_rest) - same
    starts_lines = (old_rest[old_at - 1:old_at] in (b"\n", b"")
                    and new_rest[new_at - 1:new_at] in (b"\n", b""))
    if not starts_lines and old_rest.find(b"\n", old_at) < 0:
        return None                 # no line lies within the shared tail: the last changed
    old_lines = _lines_before_tail(old_rest, old_at, starts_lines)
    new_lines = _lines_before_tail(new_rest, new_at, starts_lines)
    first_line = old.count(b"\n", 0, start)
    hunks: list = []
    _line_hunks(old_lines, new_lines, first_line, first_line, hunks)
    old_ends, new_ends = (list(accumulate(map(len, lines))) for lines in (old_lines, new_lines))

    def offset(ends, line):              # where a line starts: the lines before and newlines
        line -= first_line
        return start + (ends[line - 1] + line if line else 0)

    edits = []
    for old_line, old_count, new_line, new_count in reversed(hunks):
        at = offset(old_ends, old_line)
        old_end = offset(old_ends, old_line + old_count)
        new_size = offset(new_ends, new_line + new_count) - offset(new_ends, new_line)
        edits.append({"start_byte": at, "old_end_byte": old_end,
                      "new_end_byte": at + new_size, "start_point": (old_line, 0),
                      "old_end_point": (old_line + old_count, 0),
                      "new_end_point": (old_line + new_count, 0)})
    return edits


def _reparse(previous: ParsedFile, parsed: bytes):
    """parsed's tree, re-using previous's tree outside the runs of lines that changed."""
    tree = previous.tree.copy()
    edits = _hunk_edits(previous.parsed, parsed) or [_span_edit(previous.parsed, parsed)]
    for edit in edits:
        tree.edit(**edit)
    return get_parser().parse(parsed, tree)


def parse(source: bytes, previous: ParsedFile | None = None) -> ParsedFile:
    """source parsed; from previous's tree (another version of the file) when that is clean.

    The incremental parse does only the work around the edits. Whenever either side has a
    syntax error the file is parsed from scratch, so error recovery never depends on which
    version came before.
    """
    parsed = _renamed_macros(source)
    if previous is not None and previous.tree is not None and not previous.tree.root_node.has_error:
        tree = _reparse(previous, parsed)
        if tree is not None and not tree.root_node.has_error:
            return ParsedFile(source, parsed, tree)
    parser = get_parser()
    tree = parser.parse(parsed)
    if tree is None:                 # a parse that did not finish: start the next one clean
        parser.reset()
    return ParsedFile(source, parsed, tree)


class RecentParses:
    """The last parsed version of recently changed files, by path, so that the next version
    of a file is parsed incrementally and a version asked for twice is parsed once.

    Trees take about 40 times their source in memory, so the total source kept is bounded:
    6 MB (about 250 MB of trees per process) kept the full build of a 360k-line history
    under 1.7 GB with two workers; 8 MB was 8 % faster at 1.9 GB.
    """

    def __init__(self, budget_bytes: int = 6_000_000):
        self.budget_bytes = budget_bytes
        self._by_path: OrderedDict = OrderedDict()
        self._bytes = 0

    def parse(self, path: str, source: bytes, base_path: str | None = None,
              keep: bool = True, blob: str = "") -> ParsedFile:
        """source (the file at path, git blob id blob) parsed, incrementally from path's (else
        base_path's) last version when there is one; kept as path's last version unless keep
        is False."""
        known = self._by_path.get(path)
        if known is not None and known.source == source:
            self._by_path.move_to_end(path)
            known.blob = blob or known.blob
            return known
        previous = known if known is not None else self._by_path.get(base_path)
        file = parse(source, previous)
        file.blob = blob
        if keep:
            self._store(path, file)
        return file

    def known(self, path: str, blob: str) -> ParsedFile | None:
        """path's last parsed version if it is blob (so it need not even be read)."""
        file = self._by_path.get(path)
        return file if file is not None and blob and file.blob == blob else None

    def _store(self, path: str, file: ParsedFile) -> None:
        if path in self._by_path:
            self._bytes -= len(self._by_path.pop(path).source)
        self._by_path[path] = file
        self._bytes += len(file.source)
        while self._bytes > self.budget_bytes and len(self._by_path) > 1:
            self._bytes -= len(self._by_path.popitem(last=False)[1].source)
