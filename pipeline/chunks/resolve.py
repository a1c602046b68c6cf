"""A name a chunk's code uses in, the one definition it stands for out (or none).

The repository is the one the author saw: the symbol index of the parent commit's tree.
A name is resolved through the file's `use` paths and the crate's module tree (`crate::`,
`self::`, `super::`, workspace crates by package name), else by a unique definition in the
tree; a name defined more than once, a name too common to be told apart by uniqueness
(`new`, `from`, `fmt`, ...), a name the file imports from outside the repository, or a
name defined in the changed file itself is skipped rather than guessed: a wrong snippet is
worse than none. A name the parent tree lacks may be
defined by the same commit in another file: that definition is given, marked as such.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from pipeline.records import ABSENT_MODE, SKIPPED_MODES, Chunk
from pipeline.rust.files import module_path, path_skip_reason
from pipeline.rust.symbols import Definition, SymbolIndex

# Which definitions a name can stand for, by how the code uses it (a call may build a
# tuple struct; a type name may be a trait in a bound).
ROLE_KINDS = {"type": {"struct", "enum", "trait"}, "call": {"fn", "struct"},
              "macro": {"macro"}, "const": {"const"}}
# Function names so common (trait methods, constructors, conventions) that one free
# function of that name in a repository says nothing about which one a call means.
COMMON_NAMES = frozenset("""
new default from into try_from try_into clone fmt drop eq ne cmp partial_cmp hash deref
deref_mut as_ref as_mut borrow borrow_mut to_string to_owned from_str parse next iter
iter_mut into_iter len is_empty get get_mut set insert remove contains push pop clear
extend build builder run start stop init new_with with_capacity open close read write
flush call apply update handle process execute poll main test index serialize deserialize
visit description source error ok err unwrap expect map and_then send recv lock spawn
""".split())

# Type names of the standard library and its prelude: a repository's only `Result` alias
# says nothing about the `Result` a file uses unless the file imports it.
STD_TYPE_NAMES = frozenset("""
Result Option Error Box Vec String Rc Arc Weak Cell RefCell Mutex RwLock HashMap HashSet
BTreeMap BTreeSet VecDeque Path PathBuf Cow Ordering Duration Instant Read Write BufRead
Iterator IntoIterator Display Debug From Into Default Clone Copy Send Sync Sized Fn FnMut
FnOnce Hash Eq PartialEq Ord PartialOrd Deref AsRef Borrow ToString Formatter Self
""".split())

PARENT, SAME_COMMIT = "parent", "commit"


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


def _in_module(index, chunk: Chunk, module: list, name: str) -> Definition | None:
    """The definition of name in the module a path (segments) names from chunk's file; no
    segments name the crate's root (2015's `use Error;`)."""
    target = _module_file(index, chunk.path, module or ["crate"])
    if target is None:
        return None
    file, rest = target
    for definition in index.by_name.get(name, {}).get(file, []):
        if definition.qualname == "::".join(rest + [name]):
            return definition
    return None


def _via_path(index, chunk: Chunk, imports: list, path: str) -> Definition | None:
    """The definition a name written with its path (`model::Peer`) stands for: the path's
    head expanded through the file's imports first (`use std::io;` makes `io::` std's)."""
    segments = path.split("::")
    for imported, alias in imports:
        if alias == segments[0]:
            segments = imported.split("::") + segments[1:]
            break
    return _in_module(index, chunk, segments[:-1], segments[-1])


def _via_imports(index, chunk: Chunk, imports: list, name: str) -> Definition | None:
    """The definition a `use` of the chunk's file brings in under name, if it is in the repo."""
    for path, alias in imports:
        if alias == "*":
            found = _in_module(index, chunk, path.split("::")[:-1], name)
        elif alias == name:
            segments = path.split("::")
            found = _in_module(index, chunk, segments[:-1], segments[-1])
        else:
            continue          # most of them: no path split for each of a file's imports
        if found is not None:
            return found
    return None


def _outside(index, chunk: Chunk, path: str) -> bool:
    """Whether a `use` path leads out of the repository (`std::`, a dependency)."""
    head = path.split("::")[0]
    return head not in ("crate", "self", "super") and head not in index.crate_dirs and \
        (index.crate_of(chunk.path), head) not in index.modules


def _is_test_code(path: str, qualname: str) -> bool:
    """In a `tests` module, or in an integration-test or benchmark directory."""
    return "tests" in qualname.split("::") or bool({"tests", "benches"} & set(path.split("/")))


def _unique(index, chunk: Chunk, definitions: list, name: str, role: str, counts: Counter,
            rule: str) -> Definition | None:
    """The one definition of the right kind among definitions in the chunk's own crate,
    if there is exactly one and it is not in the chunk's own file."""
    own_files, crate = {chunk.path, chunk.old_path}, index.crate_of(chunk.path)
    # Test helpers are not what non-test code means by a name; another crate's definitions
    # are reached through imports, not by their name alone.
    testing = _is_test_code(chunk.path, chunk.qualname)
    candidates = [d for d in definitions if d.kind in ROLE_KINDS[role]
                  and (testing or not _is_test_code(d.path, d.qualname))
                  and index.crate_of(d.path) == crate]
    if not candidates or any(d.path in own_files for d in candidates):
        return None        # (the chunk's own file: skipped before, by own_names)
    if (role == "call" and name in COMMON_NAMES) or name in STD_TYPE_NAMES:
        counts["common_name_skipped"] += 1
        return None
    if len({(d.path, d.qualname) for d in candidates}) > 1:
        counts["ambiguous_name_skipped"] += 1
        return None
    counts[rule] += 1
    return candidates[0]


def resolve(index: SymbolIndex, same_commit: dict, own_names: set, chunk: Chunk,
            imports: list, name: str, role: str, counts: Counter) -> tuple | None:
    """(definition, origin) that name stands for in chunk's code, or None (local, unknown,
    ambiguous, common). same_commit: name -> definitions the commit adds or changes;
    own_names: what the chunk's own file defines, before or after the commit."""
    if "::" in name:
        found = _via_path(index, chunk, imports, name)
        rule = "resolved_by_written_path"
    else:
        if name in own_names:
            counts["defined_in_own_file"] += 1
            return None
        found, rule = _via_imports(index, chunk, imports, name), "resolved_by_path"
    if found is not None:
        if found.path in (chunk.path, chunk.old_path):
            return None
        counts[rule] += 1
        return found, PARENT
    if "::" in name:
        return None
    if any(alias == name and _outside(index, chunk, path) for path, alias in imports):
        counts["imported_from_outside"] += 1          # `use std::process::Command;`
        return None
    in_parent = index.definitions(name)
    if in_parent:
        found = _unique(index, chunk, in_parent, name, role, counts,
                        "resolved_by_unique_name")
        return (found, PARENT) if found is not None else None
    found = _unique(index, chunk, same_commit.get(name, []), name, role, counts,
                    "resolved_in_same_commit")
    return (found, SAME_COMMIT) if found is not None else None


def same_commit_definitions(index: SymbolIndex, changes) -> dict:
    """name -> the definitions a commit's changes add or change (their new versions)."""
    found: dict = defaultdict(list)
    for change in changes or ():
        if change.new_mode == ABSENT_MODE or change.new_mode in SKIPPED_MODES or \
                path_skip_reason(change.new_path, index.exclude_globs) is not None:
            continue
        old_regular = change.old_mode != ABSENT_MODE and change.old_mode not in SKIPPED_MODES
        old = index.file_definitions(change.old_path, change.old_blob if old_regular else None)
        for name, definitions in index.file_definitions(change.new_path,
                                                        change.new_blob).items():
            for kind, _, qualname, text in definitions:
                if (kind, name, qualname, text) not in old.get(name, []):
                    found[name].append(Definition(kind, name, qualname, change.new_path, text))
    return found
