"""A parsed Rust file in, its items and imports out (tree-sitter-rust).

An item is a plain dict (it goes straight into msgpack): kind, name, qualname (within the
file), owner (the impl or trait of a method), byte and line span including the doc comments
and attributes before it and the plain comments right above (tree-sitter makes those
preceding siblings, not children),
where its body starts (what precedes is its header), and its parent item's index (-1 at
top level). What an item references is read from the tree only for the items that change
(pipeline.rust.references). An import is [path, alias, scope]: scope is the inline module
its `use` is written in (`tests`; '' for the file's own), since a `use super::*` of a
`mod tests` reaches only the items of that module.
"""

from __future__ import annotations

import re

from pipeline.rust.parsing import ParsedFile, node_text, parse

# Bump when the analysis output changes: it is part of every chunk and definitions cache key.
ANALYSER_VERSION = 9

_SIMPLE_KINDS = {
    "function_item": "fn", "function_signature_item": "fn", "struct_item": "struct",
    "enum_item": "enum", "union_item": "union", "trait_item": "trait", "impl_item": "impl",
    "type_item": "type", "const_item": "const", "static_item": "static", "mod_item": "mod",
    "macro_definition": "macro_rules", "macro_invocation": "macro_call",
    "use_declaration": "use", "extern_crate_declaration": "extern_crate",
    "foreign_mod_item": "extern_block", "associated_type": "type",
}
# Items whose body holds further items: methods of impls and traits, items of inline mods.
_ITEM_CONTAINERS = {"impl_item", "trait_item", "mod_item"}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_COMMENTS = ("line_comment", "block_comment")


def _is_doc_comment(node) -> bool:
    text = node.text
    return (text.startswith(b"///") and not text.startswith(b"////")) or (
        text.startswith(b"/**") and not text.startswith(b"/***"))


def _item_name(source: bytes, node, node_type: str, kind: str) -> str:
    if node_type == "impl_item":
        trait, target = node.child_by_field_name("trait"), node.child_by_field_name("type")
        head = f"impl {node_text(source, trait)} for " if trait is not None else "impl "
        return _squash(head + (node_text(source, target) if target is not None else "?"))
    if node_type == "macro_invocation":
        return node_text(source, node.child_by_field_name("macro")) + "!"
    if node_type == "use_declaration":
        return _squash(node_text(source, node.child_by_field_name("argument")))
    if node_type == "foreign_mod_item":
        return "extern"
    name = node.child_by_field_name("name")
    return node_text(source, name) if name is not None else kind


def _is_inner_doc(node) -> bool:
    return node.text.startswith((b"//!", b"/*!"))


def _last_row(node) -> int:
    """The row a node's text ends on (a line comment's span ends after its newline)."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _collect(container, source: bytes, scope: str, owner: str, parent: int, out: dict):
    """Append the items (and flattened imports) directly inside container. Each node's
    type is read once: a tree-sitter property makes a new Python value at every access,
    and the items of every parsed file version pass through here.

    An item starts at the doc comments and attributes before it, and at the plain comments
    on the lines right above those or it (no blank line between): they say what it is
    for, and an added item without them was a target without its explanation, the
    comment left to the file's other lines."""
    pending_start = None      # the first doc comment or attribute before the next item
    comments_start = None     # the first of the plain comments right above it
    leaders_end = -1          # the row the last comment or attribute ends on
    previous_end = -1         # the row the previous child ends on
    for node in container.children:
        node_type = node.type
        row = node.start_point.row
        if node_type in _COMMENTS and not _is_doc_comment(node):
            if row == previous_end or _is_inner_doc(node):
                comments_start = None          # after code on its line, or the module's
            elif comments_start is None or row > leaders_end + 1:
                comments_start = node          # a blank line before it: a new run
            leaders_end = previous_end = _last_row(node)
            continue
        if node_type in _COMMENTS or node_type == "attribute_item":
            if comments_start is not None and row > leaders_end + 1:
                comments_start = None
            if pending_start is None:
                pending_start = node
            leaders_end = previous_end = _last_row(node)
            continue
        previous_end = _last_row(node)
        if node_type in _SIMPLE_KINDS:
            item_node, item_type = node, node_type
        elif node_type == "expression_statement" and node.named_child_count == 1 and \
                (inner := node.named_children[0]).type == "macro_invocation":
            item_node, item_type = inner, "macro_invocation"   # `foo!(..);`, a statement
        else:
            pending_start = comments_start = None
            continue
        start = pending_start if pending_start is not None else node
        if comments_start is not None and row == leaders_end + 1 and \
                comments_start.start_byte < start.start_byte:
            start = comments_start
        pending_start = comments_start = None
        _add_item(node, item_node, item_type, start, source, scope, owner, parent, out)


def _add_item(node, item_node, item_type, start, source, scope, owner, parent, out):
    items = out["items"]
    kind = _SIMPLE_KINDS[item_type]
    if kind == "fn" and owner:
        kind = "method"
    name = _item_name(source, item_node, item_type, kind)
    qualname = f"{scope}{owner}::{name}" if owner else f"{scope}{name}"
    index = len(items)
    # Where the item's body begins (its end if it has none): the header is what precedes.
    body = item_node.child_by_field_name("body")
    header_end = body if body is not None else item_node.child_by_field_name("value")
    items.append({
        "kind": kind, "name": name, "qualname": qualname, "owner": owner,
        "start_byte": start.start_byte, "end_byte": node.end_byte,
        "start_line": start.start_point.row + 1, "end_line": node.end_point.row + 1,
        "body_start": header_end.start_byte if header_end is not None else item_node.end_byte,
        "parent": parent,
    })
    if item_type == "use_declaration":
        first = len(out["imports"])
        _flatten_use(source, item_node.child_by_field_name("argument"), "", out["imports"])
        for flattened in out["imports"][first:]:
            flattened.append(scope[:-2])          # `tests::` -> `tests`
    if item_type in _ITEM_CONTAINERS and body is not None:
        if item_type == "mod_item":
            _collect(body, source, f"{scope}{name}::", "", index, out)
        else:
            inner_owner = name if item_type == "impl_item" else f"trait {name}"
            _collect(body, source, scope, inner_owner, index, out)


def children_by_parent(items: list) -> dict:
    """parent index -> its child items, in file order (index -1: the top level)."""
    children: dict = {}
    for item in items:
        children.setdefault(item["parent"], []).append(item)
    return children


def inline_scope(items: list, item: dict) -> str:
    """The inline modules an item lies in, outermost first (`a::tests`; '' at the file's own
    scope): the scope of the imports that reach it."""
    names = []
    while item["parent"] >= 0:
        item = items[item["parent"]]
        if item["kind"] == "mod":
            names.append(item["name"])
    return "::".join(reversed(names))


def _flatten_use(source: bytes, node, prefix: str, out: list) -> None:
    """Full paths of a use tree: groups, globs, `as` aliases, self/super/crate kept as written."""
    kind = node.type
    if kind in ("identifier", "scoped_identifier", "crate", "self", "super", "metavariable"):
        path = _squash(node_text(source, node)).replace(" ", "")
        full = f"{prefix}{path}" if path != "self" or not prefix else prefix.rstrip(":")
        out.append([full, full.rsplit("::", 1)[-1]])
    elif kind == "use_as_clause":
        path = _squash(node_text(source, node.child_by_field_name("path"))).replace(" ", "")
        out.append([f"{prefix}{path}", node_text(source, node.child_by_field_name("alias"))])
    elif kind == "use_wildcard":
        out.append([prefix + _squash(node_text(source, node)).replace(" ", ""), "*"])
    elif kind == "scoped_use_list":
        path_node = node.child_by_field_name("path")
        inner = prefix + (_squash(node_text(source, path_node)).replace(" ", "") + "::"
                          if path_node else "")
        _flatten_use(source, node.child_by_field_name("list"), inner, out)
    elif kind == "use_list":
        for child in node.named_children:
            _flatten_use(source, child, prefix, out)


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


