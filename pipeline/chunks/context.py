"""A chunk and the symbol index at its commit in, its cross-file context snippets out.

Priority: the file's imports; for a method of `impl Trait for Type`, the trait and the type;
then the definitions of the names the chunk's code references, those from other files
changed in the same commit first. A name is resolved through the file's `use` paths and
the crate's module tree (`crate::`, `self::`, `super::`, workspace crates by package
name), else by a unique definition in the tree. A name defined more than once, or in the
changed file itself, is skipped rather than guessed.
"""

from __future__ import annotations

import re
from collections import Counter

from pipeline.config import Settings
from pipeline.records import Chunk, Snippet
from pipeline.rust.files import module_path
from pipeline.rust.references import REFERENCE_ROLES
from pipeline.rust.symbols import Definition, SymbolIndex
from pipeline.text import cut_at_line

# Which definitions a name can stand for, by how the code uses it (a call may build a
# tuple struct; a type name may be a trait in a bound).
ROLE_KINDS = {"type": {"struct", "enum", "trait"}, "call": {"fn", "struct"},
              "macro": {"macro"}, "const": {"const"}}
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


def import_snippet(imports: list) -> list:
    if not imports:
        return []
    lines = "\n".join(f"use {path};" if alias in ("*", path.rsplit("::", 1)[-1])
                      else f"use {path} as {alias};" for path, alias in imports)
    return [Snippet(kind="import", path="", name="imports", text=lines)]


def _module_file(index: SymbolIndex, from_path: str, segments: list):
    """(file, remaining segments) that a `use` path's module part names, or None."""
    crate, here = index.crate_of(from_path), [p for p in module_path(from_path).split("::") if p]
    head = segments[0]
    if head == "crate":
        modules = segments[1:]
    elif head == "self":
        modules = here + segments[1:]
    elif head == "super":
        ups = len(segments) - len([s for s in segments if s != "super"])
        modules = here[:max(len(here) - ups, 0)] + segments[ups:]
    elif head in index.crate_dirs:
        crate, modules = index.crate_dirs[head], segments[1:]
    else:
        modules = segments                       # 2015-edition paths are crate-relative
    for cut in range(len(modules), -1, -1):
        path = index.modules.get((crate, "::".join(modules[:cut])))
        if path is not None:
            return path, modules[cut:]
    return None


def _via_imports(index, chunk: Chunk, imports: list, name: str) -> Definition | None:
    """The definition a `use` of the chunk's file brings in under name, if it is in the repo."""
    for path, alias in imports:
        segments = path.split("::")
        if alias == "*":
            target, wanted = _module_file(index, chunk.path, segments[:-1]), [name]
        elif alias == name:
            target, wanted = _module_file(index, chunk.path, segments), None
        else:
            continue
        if target is None:
            continue
        file, rest = target
        qualname = "::".join(rest if wanted is None else rest + wanted)
        for definition in index.by_name.get(name if wanted else segments[-1], {}).get(file, []):
            if definition.qualname == qualname:
                return definition
    return None


def _is_test_code(path: str, qualname: str) -> bool:
    """In a `tests` module, or in an integration-test or benchmark directory."""
    return "tests" in qualname.split("::") or bool({"tests", "benches"} & set(path.split("/")))


def resolve(index: SymbolIndex, chunk: Chunk, imports: list, name: str, role: str,
            counts: Counter) -> Definition | None:
    """The one definition name stands for in chunk's code, or None (local, unknown, ambiguous)."""
    own_files = {chunk.path, chunk.old_path}
    found = _via_imports(index, chunk, imports, name)
    if found is not None:
        if found.path in own_files:
            return None
        counts["resolved_by_path"] += 1
        return found
    # Test helpers are not what non-test code means by a name.
    testing = _is_test_code(chunk.path, chunk.qualname)
    candidates = [d for d in index.definitions(name) if d.kind in ROLE_KINDS[role]
                  and (testing or not _is_test_code(d.path, d.qualname)) or d.path in own_files]
    if not candidates or any(d.path in own_files for d in candidates):
        return None
    if len({(d.path, d.qualname) for d in candidates}) > 1:
        counts["ambiguous_name_skipped"] += 1
        return None
    counts["resolved_by_unique_name"] += 1
    return candidates[0]


def chunk_context(index: SymbolIndex, chunk: Chunk, imports: list, changed_paths: set,
                  settings: Settings, counts: Counter) -> list:
    """The context snippets of one chunk, within the per-snippet, per-kind and total budgets."""
    snippets = import_snippet(imports)
    owners = owner_names(chunk.owner)
    wanted = [(name, "type") for name in owners] + [
        (name, role) for role in REFERENCE_ROLES for name in chunk.refs[role]
        if name not in owners]
    found = []
    for name, role in wanted:
        definition = resolve(index, chunk, imports, name, role, counts)
        if definition is not None and definition not in found:
            found.append(definition)
    priority = len(owner_names(chunk.owner))
    ordered = found[:priority] + sorted(found[priority:],
                                        key=lambda d: d.path not in changed_paths)
    per_kind, total = Counter(), sum(len(s.text) for s in snippets)
    for definition in ordered:
        text, _ = cut_at_line(definition.text, settings.context_snippet_chars)
        if (per_kind[definition.kind] >= settings.context_per_kind
                or total + len(text) > settings.context_total_chars):
            counts["snippet_over_budget"] += 1
            continue
        per_kind[definition.kind] += 1
        total += len(text)
        snippets.append(Snippet(kind=definition.kind, path=definition.path,
                                name=definition.qualname, text=text))
    return snippets


def attach_context(files: list, index: SymbolIndex, changed_paths: set,
                   settings: Settings) -> dict:
    """Give every chunk of a commit's files (FileChunks) its context; returns how names
    were resolved, counted."""
    counts: Counter = Counter()
    for file in files:
        for chunk in file.chunks:
            chunk.context = chunk_context(index, chunk, file.imports, changed_paths, settings,
                                          counts)
    return dict(sorted(counts.items()))
