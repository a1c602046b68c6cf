"""A parsed file and one of its items in, the names the item uses from elsewhere out.

By role: type names (and capitalised path heads, `Peer` in `Peer::new` and in
`net::Peer::new`), called functions, macros, SCREAMING_CASE constants; in macro arguments
too, which the parser leaves as tokens, by the tokens around each name. A call through a
path is a function call only when the path names a module (`util::parse()`, `self::f()`);
`Peer::new()` calls an associated function of `Peer`, so it references `Peer` alone and
never a free `fn new` elsewhere. Generic parameters and names bound by parameters, `let` and
closures are local, so they are left out, and for a method so are those of its impl or
trait; plain identifiers are not taken at all, since most are locals and would only match
wrongly. Only changed items need this, so the query runs over their byte ranges alone.
"""

from __future__ import annotations

import re

from tree_sitter import Query, QueryCursor

from pipeline.rust.parsing import LANGUAGE, ParsedFile, node_text
from pipeline.rust.syntax import analyse

REFERENCE_ROLES = ("type", "call", "macro", "const")
_LOCAL_PATTERNS = """
(type_parameter name: (type_identifier) @local)
(parameter pattern: (identifier) @local)
(let_declaration pattern: (identifier) @local)
(closure_parameters (identifier) @local)
(tuple_pattern (identifier) @local)
"""
_REFERENCE_QUERY = Query(LANGUAGE, """
(type_identifier) @type
(scoped_identifier path: (identifier) @path_head)
(scoped_identifier path: (scoped_identifier name: (identifier) @path_head))
(scoped_type_identifier path: (identifier) @path_head)
(call_expression function: (identifier) @call)
(call_expression function: (scoped_identifier name: (identifier) @path_call))
(macro_invocation macro: (identifier) @macro)
(token_tree (identifier) @in_macro)
""" + _LOCAL_PATTERNS)
_LOCAL_QUERY = Query(LANGUAGE, _LOCAL_PATTERNS)
# SCREAMING_CASE constants are found by regex and checked against the tree: a `#match?`
# predicate in the query costs twice the rest of it, as it runs on every identifier.
_SCREAMING = re.compile(rb"(?<![A-Za-z0-9_])[A-Z][A-Z0-9_]+(?![A-Za-z0-9_])")


_MODULE_PATH_WORDS = {"self", "super", "crate"}


def _path_text(source: bytes, node) -> str:
    return "".join(node_text(source, node).split())


def _is_name_of(node, parent) -> bool:
    name = parent.child_by_field_name("name") if parent is not None else None
    return name is not None and (name.start_byte, name.end_byte) == (node.start_byte,
                                                                      node.end_byte)


def _role_in_macro(node, name: str, source: bytes) -> tuple | None:
    """(role, name) of an identifier in a macro's arguments, which tree-sitter leaves as
    tokens (`assert_eq!(parse(x), Peer::new(3))`, a whole `test!(name { ... })` body): a
    capitalised name that no `::` comes before is a type (or a path's head); a name before
    `(` a call, unless a method (`.`), an associated function (`Peer::`) or a definition
    (`fn`) comes before it; a name before `!` a macro."""
    before, after = node.prev_sibling, node.next_sibling
    before_type = before.type if before is not None else ""
    if name[:1].isupper():
        return ("type", name) if before_type != "::" and not name.isupper() else None
    if after is None:
        return None
    if after.type == "!":
        return "macro", name
    if after.type != "token_tree" or after.child(0).type != "(" or before_type in (".", "fn"):
        return None
    if before_type != "::":
        return "call", name
    head = before.prev_sibling         # `util::load(p)`: a call through a module path
    if head is not None and head.type in ("identifier", "self", "super", "crate") and \
            not node_text(source, head)[:1].isupper():
        return "call", f"{node_text(source, head)}::{name}"
    return None


def _role(capture: str, node, name: str, source: bytes) -> tuple | None:
    """(role, name) of a captured name, None if it is no reference to look up. A name
    written with its path (`io::Result`, `net::Peer`) is kept with it, so that it is
    resolved through that path and never by its last segment alone. A path head is a type
    when capitalised (else a module); a path call is a function call when its path names a
    module (else an associated function, referenced through its type)."""
    if capture == "in_macro":
        return _role_in_macro(node, name, source)
    parent = node.parent
    if capture == "type":
        qualified = parent is not None and parent.type == "scoped_type_identifier" and \
            _is_name_of(node, parent)
        return "type", _path_text(source, parent) if qualified else name
    if capture == "path_head":
        if not name[:1].isupper() or name == "Self":
            return None
        qualified = parent.type == "scoped_identifier" and _is_name_of(node, parent)
        return "type", _path_text(source, parent) if qualified else name
    if capture == "path_call":
        path = parent.child_by_field_name("path")
        written = node_text(source, path) if path is not None else ""
        last = written.rsplit("::", 1)[-1]
        if last in _MODULE_PATH_WORDS or last[:1].islower():
            return "call", _path_text(source, parent)
        return None
    return capture, name


def _captures(file: ParsedFile, query: Query, start: int, end: int) -> dict:
    """role -> names of the nodes the query captures that start within [start, end)."""
    cursor = QueryCursor(query)
    cursor.set_byte_range(start, end)
    found: dict = {}
    for capture, nodes in cursor.captures(file.tree.root_node).items():
        for node in nodes:
            if start <= node.start_byte < end:
                # Names from the file's bytes, not the parser's: a renamed macro (`str!`)
                # as written.
                name = node_text(file.source, node)
                reference = _role(capture, node, name, file.source)
                if reference is not None:
                    found.setdefault(reference[0], set()).add(reference[1])
    return found


def _screaming_identifiers(file: ParsedFile, start: int, end: int) -> set:
    """Identifier nodes spelled SCREAMING_CASE that start within [start, end): a regex
    candidate counts only where the tree has an identifier with exactly its span (not a
    string, a comment or a longer identifier)."""
    root, found = file.tree.root_node, set()
    for match in _SCREAMING.finditer(file.parsed, start, end):
        first, last = match.span()
        node = root.descendant_for_byte_range(first, last)
        if node.type == "identifier" and node.start_byte == first and node.end_byte == last:
            found.add(match.group().decode("ascii"))
    return found


def _header_names(file: ParsedFile, index: int) -> set:
    """Names bound in the header of item index, an impl's or trait's generic parameters
    (memoised: they are asked for by each method). Its body is left out: what one method
    binds is no local of another, and a large impl's body is most of its file."""
    key = ("header names", index)
    if key not in file.memo:
        item = analyse(file)["items"][index]
        file.memo[key] = _captures(file, _LOCAL_QUERY, item["start_byte"],
                                   item["body_start"]).get("local", set())
    return file.memo[key]


def item_references(file: ParsedFile, index: int) -> dict:
    """{role: sorted names} that item index of file references (memoised: an item changed
    by one commit and again by a later one is asked for as new code, then as old code of
    the same parsed file version)."""
    key = ("references", index)
    if key not in file.memo:
        file.memo[key] = _item_references(file, index)
    return file.memo[key]


def _item_references(file: ParsedFile, index: int) -> dict:
    items = analyse(file)["items"]
    item = items[index]
    start, end = item["start_byte"], item["end_byte"]
    captured = _captures(file, _REFERENCE_QUERY, start, end)
    # `_` is an inferred type (`Vec<_>`), never a name: it would match `use Trait as _;`.
    excluded = captured.get("local", set()) | {item["name"], "_"}
    if item["parent"] >= 0 and items[item["parent"]]["kind"] in ("impl", "trait"):
        excluded |= _header_names(file, item["parent"])    # the impl's generic parameters
    captured["const"] = _screaming_identifiers(file, start, end)
    return {role: sorted(captured.get(role, set()) - excluded) for role in REFERENCE_ROLES}
