"""A chunk and the symbol index of its parent commit in, its cross-file context out.

Context is the repository as the author saw it, before the change: the imports of the
file's parent version; for a method of `impl Trait for Type`, the trait and the type;
then the definitions of the names the chunk's code references (pipeline.chunks.resolve),
those the same commit adds or changes in other files first, marked as such. Snippets are
valid Rust: a long definition is cut between lines and its braces closed.
"""

from __future__ import annotations

import re
from collections import Counter

from pipeline.chunks.pieces import ELISION
from pipeline.chunks.resolve import (Place, SameCommit, chunk_place, imports_reaching,
                                     resolve)
from pipeline.config import Settings
from pipeline.records import Chunk, Snippet
from pipeline.rust.parsing import parse
from pipeline.rust.references import REFERENCE_ROLES
from pipeline.rust.symbols import SymbolIndex
from pipeline.text import cut_at_line, words

_IMPL_OWNER = re.compile(r"^impl\s+(?:(?P<trait>.+?)\s+for\s+)?(?P<type>.+)$")


def _bare_name(text: str) -> str:
    """`fmt::Display` -> Display, `&'a Foo<T>` -> Foo."""
    text = re.sub(r"<.*", "", text).strip("&*[]() ")
    text = re.sub(r"^(?:'\w+\s+)?(?:mut\s+|dyn\s+)?", "", text)
    return text.rsplit("::", 1)[-1].strip()


def owner_names(owner: str) -> list:
    """The trait and type names of `impl Trait for Type` (or `impl Type`), trait first."""
    match = _IMPL_OWNER.match(owner or "")
    if not match:
        return []
    return [_bare_name(part) for part in (match["trait"], match["type"]) if part]


def _brace_depth(text: str) -> int:
    """Braces opened and not closed in text, outside strings, chars and comments (roughly:
    enough to close a definition cut between its lines)."""
    depth = 0
    for line in text.split("\n"):
        line = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)\'|//.*', "", line)
        depth += line.count("{") - line.count("}")
    return depth


def _first_doc_line_only(text: str) -> str:
    """The definition with its leading doc comment shortened to its first line: the
    summary says what the item is; the code says what the changed code can use."""
    lines = text.split("\n")
    header = 0
    while header < len(lines) and lines[header].lstrip().startswith(("///", "#[")):
        header += 1
    docs = [i for i in range(header) if lines[i].lstrip().startswith("///")]
    return "\n".join(line for i, line in enumerate(lines) if i not in docs[1:])


def cut_definition(text: str, limit: int) -> str | None:
    """A definition within limit characters that is still valid Rust: its doc comment cut
    to its first line, then its body cut between lines, doc comments and attributes left
    without their item dropped, open braces closed after an elision comment. None if no
    valid cut is found (the snippet is then left out)."""
    if len(text) <= limit:
        return text
    text = _first_doc_line_only(text)
    if len(text) <= limit:
        return text
    kept, _ = cut_at_line(text, max(limit - 24, 1))
    lines = kept.split("\n")
    while lines and lines[-1].strip().startswith(("///", "//!", "#[", "#![")):
        lines.pop()
    kept = "\n".join(lines).rstrip()
    depth = _brace_depth(kept)
    closing = "".join(f"\n{'    ' * level}}}" for level in range(depth - 1, -1, -1))
    candidate = f"{kept}\n{'    ' * depth}{ELISION}{closing}" if depth > 0 else kept
    tree = parse(candidate.encode()).tree
    if not candidate or tree is None or tree.root_node.has_error or len(candidate) > limit:
        return None
    return candidate


# Traits of the standard library and common crates that code imports to call their
# methods (`.lines()` needs BufRead in scope), whose names the code need not spell.
_IMPORTED_TRAITS = frozenset("""
Read Write BufRead Seek FromStr Hash Hasher Deref DerefMut Borrow BorrowMut Any Error
FromIterator Future Stream Sink AsyncRead AsyncWrite AsyncBufRead AsyncSeek Itertools
""".split())


def import_snippet(file_path: str, imports: list, chunks: list, limit: int,
                   is_trait=lambda name: False) -> list:
    """The imports of the chunk's file as the author saw them, each once. Over limit
    characters, only those of the names the file's changed code uses (the words of
    chunks' code), globs and traits (whose methods the code may call without naming them:
    is_trait(name), those of _IMPORTED_TRAITS and `…Ext` ones), those the changed lines
    use first, and an elision marker says lines were left out: a long list was left out
    whole at the tokens stage, over its token budget, where the code uses a few of them
    (that stage now cuts one still over its budget at a line)."""
    entries = dict.fromkeys((f"use {path};" if alias in ("*", path.rsplit("::", 1)[-1])
                             else f"use {path} as {alias};", alias) for path, alias in imports)
    lines = [line for line, _ in entries]
    if sum(len(line) + 1 for line in lines) > limit + 1:
        used = set().union(*(words(chunk.old_code) | words(chunk.new_code)
                             for chunk in chunks))
        kept = [(line, alias) for line, alias in entries
                if alias == "*" or alias in used or alias in _IMPORTED_TRAITS
                or (alias.endswith("Ext") and alias[:1].isupper()) or is_trait(alias)]
        # Those of the names the changed lines use first: a list still over the token
        # budget keeps its first lines (pipeline.tokens.segments).
        changed = set().union(*(_changed_words(chunk) for chunk in chunks))
        kept.sort(key=lambda entry: entry[1] not in changed)
        lines = [line for line, _ in kept] + [ELISION] if kept else []
    if not lines:
        return []
    return [Snippet(kind="import", path=file_path, name="imports", text="\n".join(lines))]


def _changed_words(chunk: Chunk) -> set:
    """The words of the lines the change adds or removes (every line of an added item)."""
    old_lines, new_lines = set(chunk.old_code.split("\n")), set(chunk.new_code.split("\n"))
    return words("\n".join(old_lines ^ new_lines))


def _wanted(chunk: Chunk) -> list:
    """(name, role) the chunk's context should define, most important first: the trait
    and type of the method's impl, then what its changed lines reference, then what the
    rest of its code does. The per-kind budget keeps the first few: by name alone, a
    `CargoResult` in an unchanged signature would push out the `Work` that a changed line
    builds."""
    owners = owner_names(chunk.owner)
    references = [(name, role) for role in REFERENCE_ROLES for name in chunk.refs[role]
                  if name not in owners]
    changed = _changed_words(chunk)
    references.sort(key=lambda reference: reference[0].rsplit("::", 1)[-1] not in changed)
    return [(name, "type") for name in owners] + references


def chunk_context(index: SymbolIndex, same_commit: SameCommit, place: Place,
                  imports: list, settings: Settings, counts: Counter) -> tuple[list, list]:
    """The context snippets of the chunk at place within the per-snippet, per-kind and
    total budgets, and the spare ones that come next: a row that already shows some of the
    first gives the room they would take to the spare ones (pipeline.merge.packing).
    imports: the file's import snippet (import_snippet). A file-level chunk gets none: its
    old code is the file's imports already."""
    chunk = place.chunk
    snippets = list(imports) if chunk.kind != "file" else []
    found, owners, priority = [], len(owner_names(chunk.owner)), 0
    for position, (name, role) in enumerate(_wanted(chunk)):
        resolved = resolve(index, same_commit, place, name, role, counts)
        if resolved is not None and resolved not in found:
            found.append(resolved)
            priority += position < owners
    # The owner's trait and type first; then what the commit itself adds or changes.
    found = found[:priority] + sorted(found[priority:], key=lambda pair: pair[1] != "commit")
    spare, per_kind, total = [], Counter(), sum(len(s.text) for s in snippets)
    for definition, origin in found:
        text = cut_definition(definition.text, settings.context_snippet_chars)
        if text is None:
            counts["snippet_not_cut_validly"] += 1
            continue
        snippet = Snippet(kind=definition.kind, path=definition.path, name=definition.qualname,
                          text=text, origin=origin)
        if (per_kind[definition.kind] < settings.context_per_kind
                and total + len(text) <= settings.context_total_chars):
            snippets.append(snippet)
            total += len(text)
        elif per_kind[definition.kind] < 2 * settings.context_per_kind:
            spare.append(snippet)
        else:
            counts["snippet_over_budget"] += 1
            continue
        per_kind[definition.kind] += 1
    return snippets, spare


def attach_context(files: list, index: SymbolIndex, same_commit: SameCommit,
                   settings: Settings) -> dict:
    """Give every chunk of a commit's files (FileChunks) its context, the index being at
    the commit's parent; returns how names were resolved, counted."""
    counts: Counter = Counter()
    for file in files:
        imports = file.parent_imports + file.new_imports
        shown = import_snippet(file.path, file.shown_imports(),
                               [chunk for chunk in file.chunks if chunk.kind != "file"],
                               settings.context_snippet_chars, lambda name: any(
                                   d.kind == "trait" for d in index.definitions(name)))
        reaching: dict = {}          # scope -> the imports that reach it
        for chunk, scope in zip(file.chunks, file.scopes):
            if scope not in reaching:
                reaching[scope] = imports_reaching(file.path, imports, scope)
            place = chunk_place(index, same_commit, chunk, scope, reaching[scope],
                                file.own_names)
            chunk.context, chunk.spare_context = chunk_context(
                index, same_commit, place, shown, settings, counts)
    return dict(sorted(counts.items()))
