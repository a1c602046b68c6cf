"""Rust file bytes in, the file's items out (tree-sitter-rust), cached by content hash.

An item is a plain dict (it goes straight into msgpack): kind, name, qualname (within the
file), owner (the impl or trait of a method), byte and line span including the doc comments
and attributes before it (tree-sitter makes those preceding siblings, not children),
signature, the identifiers it references, and its parent item's index (-1 at top level).
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from pathlib import Path

import tree_sitter_rust
from tree_sitter import Language, Parser, Query, QueryCursor

from pipeline import cache

# Bump when the analysis output changes: it is part of every analysis and chunk cache key.
ANALYSER_VERSION = 6

LANGUAGE = Language(tree_sitter_rust.language())
# What an item uses from elsewhere, by role: type names (and path heads, `Peer` in
# `Peer::new`), called functions, macros, SCREAMING_CASE constants. Generic parameters and
# names bound by parameters, `let` and closures are local, so they are left out; plain
# identifiers are not taken at all, since most are locals and would only match wrongly.
_REFERENCE_QUERY = Query(LANGUAGE, """
(type_identifier) @type
(scoped_identifier path: (identifier) @type)
(scoped_type_identifier path: (identifier) @type)
(call_expression function: (identifier) @call)
(call_expression function: (scoped_identifier name: (identifier) @call))
(macro_invocation macro: (identifier) @macro)
((identifier) @const (#match? @const "^[A-Z][A-Z0-9_]+$"))
(type_parameter name: (type_identifier) @local)
(parameter pattern: (identifier) @local)
(let_declaration pattern: (identifier) @local)
(closure_parameters (identifier) @local)
(tuple_pattern (identifier) @local)
""")
REFERENCE_ROLES = ("type", "call", "macro", "const")

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


def _members(node) -> list:
    """Field names of a struct or union, variant names of an enum."""
    body = node.child_by_field_name("body")
    if body is None or node.type not in ("struct_item", "union_item", "enum_item"):
        return []
    names = []
    for child in body.named_children:
        name = child.child_by_field_name("name")
        if name is not None:
            names.append(_text(name))
    return names


def _body_start(node) -> int:
    """Where the item's body begins (its end if it has none): the header is what precedes."""
    for field in _BODY_FIELDS:
        body = node.child_by_field_name(field)
        if body is not None:
            return body.start_byte
    return node.end_byte


def _signature(node, source: bytes) -> str:
    """The item's header: its text up to the body, whitespace squashed."""
    for field in _BODY_FIELDS:
        body = node.child_by_field_name(field)
        if body is not None:
            return _squash(source[node.start_byte:body.start_byte].decode("utf-8", "replace"))
    return _squash(_text(node))[:300]


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
        "signature": _signature(item_node, source), "body_start": _body_start(item_node),
        "members": _members(item_node), "refs": [], "parent": parent,
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


def _captured(tree) -> tuple[list, list]:
    """(start byte, role, name) of every reference, and (start byte, name) of local names."""
    references, locals_ = [], []
    for role, nodes in QueryCursor(_REFERENCE_QUERY).captures(tree.root_node).items():
        for node in nodes:
            entry = (node.start_byte, node.text.decode("utf-8", "replace"))
            if role == "local":
                locals_.append(entry)
            else:
                references.append((entry[0], role, entry[1]))
    return sorted(references), sorted(locals_)


def _within(entries: list, starts: list, item: dict) -> list:
    low = bisect.bisect_left(starts, item["start_byte"])
    return entries[low:bisect.bisect_left(starts, item["end_byte"])]


def _attach_references(tree, items: list) -> None:
    """Give each item {role: sorted names} it references (one query per file)."""
    references, locals_ = _captured(tree)
    reference_starts = [entry[0] for entry in references]
    local_starts = [entry[0] for entry in locals_]
    local_names = [{name for _, name in _within(locals_, local_starts, item)} for item in items]
    for index, item in enumerate(items):
        excluded = local_names[index] | {item["name"]}
        if item["parent"] >= 0 and items[item["parent"]]["kind"] in ("impl", "trait"):
            excluded |= local_names[item["parent"]]      # the impl's generic parameters
        by_role: dict = {role: set() for role in REFERENCE_ROLES}
        for _, role, name in _within(references, reference_starts, item):
            if name not in excluded:
                by_role[role].add(name)
        item["refs"] = {role: sorted(names) for role, names in by_role.items()}


# tree-sitter-rust reads `try` as the 2018 keyword, so 2015-edition `try!(...)` would be a
# syntax error. The parser sees a same-length macro name instead; offsets do not move and
# every text is still sliced from the original bytes.
_TRY_MACRO = re.compile(rb"\btry!")


def analyse(source: bytes) -> dict:
    """The items, imports and health of one version of a Rust file."""
    parsed = _TRY_MACRO.sub(b"tr_!", source) if b"try!" in source else source
    parser = get_parser()
    tree = parser.parse(parsed)
    if tree is None:                 # a parse that did not finish: start the next one clean
        parser.reset()
        return {"version": ANALYSER_VERSION, "has_error": True, "decode_errors": False,
                "line_count": source.count(b"\n") + 1, "items": [], "imports": []}
    out: dict = {"items": [], "imports": []}
    _collect(tree.root_node, source, "", "", -1, out)
    _attach_references(tree, out["items"])
    try:
        source.decode("utf-8")
        decode_errors = False
    except UnicodeDecodeError:
        decode_errors = True
    return {"version": ANALYSER_VERSION, "has_error": tree.root_node.has_error,
            "decode_errors": decode_errors, "line_count": source.count(b"\n") + 1,
            "items": out["items"], "imports": out["imports"]}


# Recent analyses stay in memory: a commit's new file versions are the next commit's old
# ones, and the symbol index asks for the same versions again.
_recent: OrderedDict = OrderedDict()
_RECENT_SIZE = 128


def cached_analysis(cache_root: Path, source: bytes) -> dict:
    """analyse(source), computed once per distinct file content in the whole history."""
    key = cache.content_key([cache.digest(source), ANALYSER_VERSION])
    path = cache.record_path(cache_root, "analysis", key)
    if path in _recent:
        _recent.move_to_end(path)
        return _recent[path]
    analysis = cache.read_record(path)
    if analysis is None:
        analysis = analyse(source)
        cache.write_record(path, analysis)
    _recent[path] = analysis
    if len(_recent) > _RECENT_SIZE:
        _recent.popitem(last=False)
    return analysis
