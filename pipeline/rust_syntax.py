"""Rust file bytes in, the file's syntax tree and items out (tree-sitter-rust).

An item is a plain dict (it goes straight into msgpack): kind, name, qualname (within the
file), owner (the impl or trait of a method), byte and line span including the doc comments
and attributes before it (tree-sitter makes those preceding siblings, not children),
where its body starts (what precedes is its header), and its parent item's index (-1 at
top level). What an item references is read from the tree only for the items that change
(pipeline.references).
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from dataclasses import dataclass
from itertools import accumulate

import tree_sitter_rust
from tree_sitter import Language, Parser, Tree

# Bump when the analysis output changes: it is part of every chunk and definitions cache key.
ANALYSER_VERSION = 6

LANGUAGE = Language(tree_sitter_rust.language())

_SIMPLE_KINDS = {
    "function_item": "fn", "function_signature_item": "fn", "struct_item": "struct",
    "enum_item": "enum", "union_item": "union", "trait_item": "trait", "impl_item": "impl",
    "type_item": "type", "const_item": "const", "static_item": "static", "mod_item": "mod",
    "macro_definition": "macro_rules", "macro_invocation": "macro_call",
    "use_declaration": "use", "extern_crate_declaration": "extern_crate",
    "foreign_mod_item": "extern_block", "associated_type": "type",
}
# Items whose body holds further items: methods of impls and traits, items of inline mods.
_CONTAINERS = {"impl_item", "trait_item", "mod_item"}
_BODY_FIELDS = ("body", "value")
_parser: Parser | None = None


def get_parser() -> Parser:
    """One parser per process: building it costs far more than a parse of a small file."""
    global _parser
    if _parser is None:
        _parser = Parser(LANGUAGE)
    return _parser


def _text(node) -> str:
    return node.text.decode("utf-8", errors="replace")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _is_doc_or_attribute(node) -> bool:
    if node.type == "attribute_item":
        return True
    if node.type in ("line_comment", "block_comment"):
        text = node.text
        return (text.startswith(b"///") and not text.startswith(b"////")) or (
            text.startswith(b"/**") and not text.startswith(b"/***"))
    return False


def _item_name(node, kind: str) -> str:
    if node.type == "impl_item":
        trait, target = node.child_by_field_name("trait"), node.child_by_field_name("type")
        head = f"impl {_text(trait)} for " if trait is not None else "impl "
        return _squash(head + (_text(target) if target is not None else "?"))
    if node.type == "macro_invocation":
        return _text(node.child_by_field_name("macro")) + "!"
    if node.type == "use_declaration":
        return _squash(_text(node.child_by_field_name("argument")))
    if node.type == "foreign_mod_item":
        return "extern"
    name = node.child_by_field_name("name")
    return _text(name) if name is not None else kind


def _body_start(node) -> int:
    """Where the item's body begins (its end if it has none): the header is what precedes."""
    for field in _BODY_FIELDS:
        body = node.child_by_field_name(field)
        if body is not None:
            return body.start_byte
    return node.end_byte


def _item_node(node):
    """The item a top-level/body node stands for, if any (a `foo!(..);` is a statement)."""
    if node.type in _SIMPLE_KINDS:
        return node
    if node.type == "expression_statement" and node.named_child_count == 1:
        inner = node.named_children[0]
        if inner.type == "macro_invocation":
            return inner
    return None


def _collect(container, source: bytes, scope: str, owner: str, parent: int, out: dict):
    """Append the items (and flattened imports) directly inside container."""
    pending_start = None
    for node in container.children:
        if _is_doc_or_attribute(node):
            if pending_start is None:
                pending_start = node
            continue
        item_node = _item_node(node)
        if item_node is None:
            if node.type not in ("line_comment", "block_comment"):
                pending_start = None
            continue
        start = pending_start if pending_start is not None else node
        pending_start = None
        _add_item(node, item_node, start, source, scope, owner, parent, out)


def _add_item(node, item_node, start, source, scope, owner, parent, out):
    items = out["items"]
    kind = _SIMPLE_KINDS[item_node.type]
    if kind == "fn" and owner:
        kind = "method"
    name = _item_name(item_node, kind)
    qualname = f"{scope}{owner}::{name}" if owner else f"{scope}{name}"
    index = len(items)
    items.append({
        "kind": kind, "name": name, "qualname": qualname, "owner": owner,
        "start_byte": start.start_byte, "end_byte": node.end_byte,
        "start_line": start.start_point.row + 1, "end_line": node.end_point.row + 1,
        "body_start": _body_start(item_node), "parent": parent,
    })
    if item_node.type == "use_declaration":
        _flatten_use(item_node.child_by_field_name("argument"), "", out["imports"])
    body = item_node.child_by_field_name("body")
    if item_node.type in _CONTAINERS and body is not None:
        if item_node.type == "mod_item":
            _collect(body, source, f"{scope}{name}::", "", index, out)
        else:
            inner_owner = name if item_node.type == "impl_item" else f"trait {name}"
            _collect(body, source, scope, inner_owner, index, out)


def children_by_parent(items: list) -> dict:
    """parent index -> its child items, in file order (index -1: the top level)."""
    children: dict = {}
    for item in items:
        children.setdefault(item["parent"], []).append(item)
    return children


def _flatten_use(node, prefix: str, out: list) -> None:
    """Full paths of a use tree: groups, globs, `as` aliases, self/super/crate kept as written."""
    kind = node.type
    if kind in ("identifier", "scoped_identifier", "crate", "self", "super", "metavariable"):
        path = _squash(_text(node)).replace(" ", "")
        full = f"{prefix}{path}" if path != "self" or not prefix else prefix.rstrip(":")
        out.append([full, full.rsplit("::", 1)[-1]])
    elif kind == "use_as_clause":
        path = _squash(_text(node.child_by_field_name("path"))).replace(" ", "")
        out.append([f"{prefix}{path}", _text(node.child_by_field_name("alias"))])
    elif kind == "use_wildcard":
        out.append([prefix + _squash(_text(node)).replace(" ", ""), "*"])
    elif kind == "scoped_use_list":
        path_node = node.child_by_field_name("path")
        inner = prefix + (_squash(_text(path_node)).replace(" ", "") + "::" if path_node else "")
        _flatten_use(node.child_by_field_name("list"), inner, out)
    elif kind == "use_list":
        for child in node.named_children:
            _flatten_use(child, prefix, out)


# tree-sitter-rust reads `try` as the 2018 keyword, so 2015-edition `try!(...)` would be a
# syntax error. The parser sees a same-length macro name instead; offsets do not move and
# every text is still sliced from the original bytes.
_TRY_MACRO = re.compile(rb"\btry!")


@dataclass(eq=False)
class ParsedFile:
    """One version of a Rust file and its syntax tree (None: the parse did not finish)."""
    source: bytes
    parsed: bytes                  # what the parser saw: `try!` renamed, offsets unchanged
    tree: Tree | None
    # The analysis and per-item facts, each computed once.
    memo: dict = dataclasses.field(default_factory=dict)
    blob: str = ""                 # its git blob id, when known


def _common_prefix(old, new) -> int:
    """Length of the longest common prefix of two byte strings or lists, by binary search
    over slice comparisons (C speed)."""
    low, high = 0, min(len(old), len(new))
    while low < high:
        middle = (low + high + 1) // 2
        if old[:middle] == new[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _point(source: bytes, offset: int) -> tuple[int, int]:
    return source.count(b"\n", 0, offset), offset - (source.rfind(b"\n", 0, offset) + 1)


def _span_edit(old: bytes, new: bytes) -> dict:
    """One edit covering everything from the first to the last byte that differs."""
    start = _common_prefix(old, new)
    tail = _common_prefix(old[start:][::-1], new[start:][::-1])
    old_end, new_end = len(old) - tail, len(new) - tail
    return {"start_byte": start, "old_end_byte": old_end, "new_end_byte": new_end,
            "start_point": _point(old, start), "old_end_point": _point(old, old_end),
            "new_end_point": _point(new, new_end)}


def _line_hunks(old: list, new: list, old_at: int, new_at: int, out: list, depth: int = 0):
    """Append (old first line, old count, new first line, new count) for runs of lines that
    differ between two line lists. Not a minimal diff: the common head and tail are cut off
    and the rest is split at a line of old's middle found again in new, recursively. Any
    such runs describe old -> new exactly, which is all the parser needs."""
    head = _common_prefix(old, new)
    old, new, old_at, new_at = old[head:], new[head:], old_at + head, new_at + head
    tail = _common_prefix(old[::-1], new[::-1])
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


def _hunk_edits(old: bytes, new: bytes) -> list | None:
    """One edit per run of changed lines, last first, so that each one's positions are
    still those of old (an edit spanning the first to the last change would make the parser
    redo everything in between). None if a run reaches the last line (whose end is not a
    line start): _span_edit covers that."""
    old_lines, new_lines = old.split(b"\n"), new.split(b"\n")
    hunks: list = []
    _line_hunks(old_lines, new_lines, 0, 0, hunks)
    if any(o + oc >= len(old_lines) or n + nc >= len(new_lines) for o, oc, n, nc in hunks):
        return None
    old_ends, new_ends = (list(accumulate(map(len, lines))) for lines in (old_lines, new_lines))

    def offset(ends, line):              # where a line starts: the lines before and newlines
        return ends[line - 1] + line if line else 0

    edits = []
    for old_line, old_count, new_line, new_count in reversed(hunks):
        start = offset(old_ends, old_line)
        old_end = offset(old_ends, old_line + old_count)
        new_size = offset(new_ends, new_line + new_count) - offset(new_ends, new_line)
        edits.append({"start_byte": start, "old_end_byte": old_end,
                      "new_end_byte": start + new_size, "start_point": (old_line, 0),
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
    parsed = _TRY_MACRO.sub(b"tr_!", source) if b"try!" in source else source
    if previous is not None and previous.tree is not None and not previous.tree.root_node.has_error:
        tree = _reparse(previous, parsed)
        if tree is not None and not tree.root_node.has_error:
            return ParsedFile(source, parsed, tree)
    parser = get_parser()
    tree = parser.parse(parsed)
    if tree is None:                 # a parse that did not finish: start the next one clean
        parser.reset()
    return ParsedFile(source, parsed, tree)


def analyse(file: ParsedFile | bytes) -> dict:
    """The items, imports and health of one version of a Rust file (computed once per parse)."""
    if isinstance(file, bytes):
        file = parse(file)
    if "analysis" not in file.memo:
        file.memo["analysis"] = _analysis(file)
    return file.memo["analysis"]


def _analysis(file: ParsedFile) -> dict:
    source = file.source
    if file.tree is None:
        return {"version": ANALYSER_VERSION, "has_error": True, "decode_errors": False,
                "line_count": source.count(b"\n") + 1, "items": [], "imports": []}
    out: dict = {"items": [], "imports": []}
    _collect(file.tree.root_node, source, "", "", -1, out)
    try:
        source.decode("utf-8")
        decode_errors = False
    except UnicodeDecodeError:
        decode_errors = True
    return {"version": ANALYSER_VERSION, "has_error": file.tree.root_node.has_error,
            "decode_errors": decode_errors, "line_count": source.count(b"\n") + 1,
            "items": out["items"], "imports": out["imports"]}


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
