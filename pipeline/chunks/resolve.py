"""A name a chunk's code uses in, the one definition it stands for out (or none).

The repository is the one the author saw: the symbol index of the parent commit's tree.
A name is resolved through the `use` paths that reach the chunk's code (those of its
inline module and the enclosing ones) and the crate's module tree (`crate::`, `self::`,
`super::`, workspace crates by package name), else by a unique definition in its crate;
a name defined more than once, a name too common to be told apart by uniqueness (`new`,
`from`, `fmt`, ...), a name the file imports from outside the repository, or a name
defined in the changed file itself is skipped rather than guessed: a wrong snippet is
worse than none. A name the parent tree lacks in the chunk's crate may be defined by the
same commit in another file: that definition is given, marked as such. The chunk's crate
is the one of the commit's tree: a crate the commit adds is none of the parent tree's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import NamedTuple

from pipeline.records import ABSENT_MODE, SKIPPED_MODES, Chunk
from pipeline.rust.files import crate_root_module, module_path, path_skip_reason
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


class SameCommit(NamedTuple):
    """What the chunk's commit itself brings (the index is at its parent)."""
    sha: str
    definitions: dict     # name -> the definitions its changes add or change
    new_crates: dict      # package name (as `use` writes it) -> directory of those it adds
    new_modules: set      # (crate directory, top module) its files give the crates it adds


class Place(NamedTuple):
    """Where a chunk's code lies, as resolving its names needs it (made once per chunk)."""
    chunk: Chunk
    crate: str            # the directory of its crate in the commit's own tree
    module: list          # its module path: its file's, then the inline modules it lies in
    root: list            # the module path of its crate's root (crate_root_module)
    imports: list         # (path, alias, module the `use` is written in), innermost first
    own_names: set        # what the chunk's own file defines, before or after the commit
    new_crate: bool       # its crate is one the commit adds: the parent tree has none of it


def imports_reaching(path: str, imports: list, scope: str) -> list:
    """(path, alias, module the `use` is written in) of the file's imports ([path, alias,
    scope]) that reach its code in inline module scope ('' for the file's own), innermost
    first: a `use` in a `mod tests` reaches only that module's items, while the file's own
    reach into `mod tests` (its `use super::*`)."""
    file_module = [part for part in module_path(path).split("::") if part]
    reaching = [(imported, alias, file_module + (written.split("::") if written else []))
                for imported, alias, written in imports
                if not written or written == scope or scope.startswith(written + "::")]
    reaching.sort(key=lambda found: -len(found[2]))          # stable: file order within one
    return reaching


def chunk_place(index: SymbolIndex, same_commit: SameCommit, chunk: Chunk, scope: str,
                reaching: list, own_names: set) -> Place:
    """The Place of a chunk lying in inline module scope of its file, reached by imports
    (imports_reaching)."""
    module = [part for part in module_path(chunk.path).split("::") if part]
    crate = index.commit_crate_of(same_commit.sha, chunk.path)
    return Place(chunk, crate, module + (scope.split("::") if scope else []),
                 crate_root_module(chunk.path, lambda path: path in index.tree or
                                   path == chunk.path), reaching, own_names,
                 crate != index.crate_of(chunk.path))


def _module_file(index: SymbolIndex, crate: str, root: list, here: list, segments: list):
    """(file, remaining segments) that a `use` path's module part names, written in module
    here of crate, whose root module is root, or None."""
    head = segments[0]
    if head == "crate":
        modules = root + segments[1:]
    elif head == "self":
        modules = here + segments[1:]
    elif head == "super":
        ups = len(segments) - len([s for s in segments if s != "super"])
        modules = here[:max(len(here) - ups, 0)] + segments[ups:]
    elif head in index.crate_dirs:
        crate = index.crate_dirs[head]
        modules = index.library_root(crate) + segments[1:]
    else:
        modules = root + segments                # 2015-edition paths are crate-relative
    for cut in range(len(modules), -1, -1):
        path = index.modules.get((crate, "::".join(modules[:cut])))
        if path is not None:
            return path, modules[cut:]
    return None


def _in_module(index, place: Place, here: list, module: list, name: str,
               role: str) -> Definition | None:
    """The definition of name, of a kind role references, in the module a path (segments)
    names from module here of the chunk's crate; no segments name the crate's root (2015's
    `use Error;`). A `pkg(..)` call is the module's `fn pkg`, not its `macro_rules! pkg`."""
    target = _module_file(index, place.crate, place.root, here, module or ["crate"])
    if target is None:
        return None
    file, rest = target
    for definition in index.by_name.get(name, {}).get(file, []):
        if definition.qualname == "::".join(rest + [name]) and \
                definition.kind in ROLE_KINDS[role]:
            return definition
    return None


def _via_path(index, place: Place, path: str, role: str) -> Definition | None:
    """The definition a name written with its path (`model::Peer`) stands for: the path's
    head expanded through the imports first (`use std::io;` makes `io::` std's)."""
    segments, here = path.split("::"), place.module
    for imported, alias, written_in in place.imports:
        if alias == segments[0]:
            segments, here = imported.split("::") + segments[1:], written_in
            break
    return _in_module(index, place, here, segments[:-1], segments[-1], role)


def _via_imports(index, place: Place, name: str, role: str) -> Definition | None:
    """The definition a `use` reaching the chunk brings in under name, if it is in the repo."""
    for path, alias, written_in in place.imports:
        if alias == "*":
            found = _in_module(index, place, written_in, path.split("::")[:-1], name, role)
        elif alias == name:
            segments = path.split("::")
            found = _in_module(index, place, written_in, segments[:-1], segments[-1], role)
        else:
            continue          # most of them: no path split for each of a file's imports
        if found is not None:
            return found
    return None


def _outside(index, same_commit: SameCommit, place: Place, path: str) -> bool:
    """Whether a `use` path leads out of the repository (`std::`, a dependency). A path of
    one name is an item of the crate's root (2015's `use Error;`); the modules of a crate
    the commit adds are those of its files in the commit (the parent tree has none)."""
    head = path.split("::")[0]
    if head in ("crate", "self", "super") or head in index.crate_dirs or head == path or \
            head in same_commit.new_crates:
        return False
    return (place.crate, head) not in index.modules and \
        (place.crate, head) not in same_commit.new_modules and \
        (place.crate, "::".join(place.root + [head])) not in index.modules


def _is_test_code(path: str, qualname: str) -> bool:
    """In a `tests` module, or in an integration-test or benchmark directory."""
    return "tests" in qualname.split("::") or bool({"tests", "benches"} & set(path.split("/")))


def _imported_crate(index, same_commit: SameCommit, place: Place, name: str) -> str:
    """The crate whose definitions name is looked for among: the workspace crate a `use`
    of it names (`use grep::Match;` is grep's, even where grep's root only re-exports it
    from a module; `use cargo_util::ProcessBuilder;` names a crate the commit adds), else
    the chunk's own."""
    for path, alias, _ in place.imports:
        if alias == name:
            head = path.split("::")[0]
            if head in index.crate_dirs:
                return index.crate_dirs[head]
            return same_commit.new_crates.get(head, place.crate)
    return place.crate


def _visible_elsewhere(definition: Definition, place: Place, has_file) -> bool:
    """Whether the chunk's code can use the definition by its name. A `macro_rules!` is
    scoped by text: one inside an inline module is seen by that module alone (cargo's
    read2.rs has a `try!` in its `mod imp`), one at a file's top by its crate's files (not
    by the package's binaries and tests: pre-1.0 cargo's lib.rs `try!` is not src/bin's),
    unless exported."""
    if definition.kind != "macro" or "#[macro_export]" in definition.text:
        return True
    return "::" not in definition.qualname and \
        crate_root_module(definition.path, has_file) == place.root


def _candidates(definitions: list, crate_of, crate: str, place: Place, role: str,
                has_file) -> list:
    """The definitions of the right kind in crate (crate_of: a path's crate in the tree the
    definitions are from; has_file: whether the parent tree has a file) that the chunk's code
    sees. Test helpers are not what non-test code means by a name; another crate's
    definitions are reached through imports, not by name alone."""
    testing = _is_test_code(place.chunk.path, place.chunk.qualname)
    return [d for d in definitions if d.kind in ROLE_KINDS[role]
            and (testing or not _is_test_code(d.path, d.qualname))
            and crate_of(d.path) == crate and _visible_elsewhere(d, place, has_file)]


def _unique(candidates: list, place: Place, name: str, role: str, counts: Counter,
            rule: str) -> Definition | None:
    """The one definition among candidates, if there is exactly one and it is not in the
    chunk's own file."""
    own_files = {place.chunk.path, place.chunk.old_path}
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


def resolve(index: SymbolIndex, same_commit: SameCommit, place: Place, name: str,
            role: str, counts: Counter) -> tuple | None:
    """(definition, origin) that name stands for in the code of the chunk at place, or None
    (local, unknown, ambiguous, common)."""
    chunk = place.chunk
    if "::" in name:
        found = _via_path(index, place, name, role)
        rule = "resolved_by_written_path"
    else:
        if name in place.own_names:
            counts["defined_in_own_file"] += 1
            return None
        found, rule = _via_imports(index, place, name, role), "resolved_by_path"
    if found is not None:
        if found.path in (chunk.path, chunk.old_path):
            return None
        counts[rule] += 1
        return found, PARENT
    if "::" in name:
        return None
    if any(alias == name and _outside(index, same_commit, place, path)
           for path, alias, _ in place.imports):
        counts["imported_from_outside"] += 1          # `use std::process::Command;`
        return None
    # A unique definition in the crate the name comes from: a use of another workspace
    # crate's item that its path does not lead to is that crate's, never the chunk's own.
    crate = _imported_crate(index, same_commit, place, name)
    rule = "resolved_by_unique_name" if crate == place.crate else "resolved_in_imported_crate"
    added = place.new_crate if crate == place.crate else crate in same_commit.new_crates.values()
    in_parent = [] if added else index.definitions(name)
    has_file = index.tree.__contains__
    candidates = _candidates(in_parent, index.crate_of, crate, place, role, has_file)
    # A name the parent tree defines only in other crates is not looked for among what the
    # commit adds to the chunk's own (ripgrep's `grep::searcher::BinaryDetection` would get
    # a private flag type of that name); in the crate a `use` names, it may be the commit's.
    if candidates or (in_parent and crate == place.crate):
        found = _unique(candidates, place, name, role, counts, rule)
        return (found, PARENT) if found is not None else None
    # A name the parent tree lacks (or a crate it lacks): maybe the commit defines it.
    in_commit = _candidates(same_commit.definitions.get(name, []),
                            lambda path: index.commit_crate_of(same_commit.sha, path),
                            crate, place, role, has_file)
    found = _unique(in_commit, place, name, role, counts, "resolved_in_same_commit")
    return (found, SAME_COMMIT) if found is not None else None


def same_commit(index: SymbolIndex, sha: str, changes) -> SameCommit:
    """What commit sha's changes bring: the definitions they add or change (their new
    versions), by name, and the crates it adds with their modules."""
    found: dict = defaultdict(list)
    for change in changes or ():
        if change.new_mode == ABSENT_MODE or change.new_mode in SKIPPED_MODES or \
                path_skip_reason(change.new_path, index.exclude_globs) is not None:
            continue
        # A moved file's definitions are new where it lies now (in a crate the commit adds,
        # they are the only ones of their names there).
        old_regular = change.old_mode != ABSENT_MODE and change.old_mode not in SKIPPED_MODES \
            and change.old_path == change.new_path
        old = index.file_definitions(change.old_path, change.old_blob if old_regular else None)
        for name, definitions in index.file_definitions(change.new_path,
                                                        change.new_blob).items():
            for kind, _, qualname, text in definitions:
                if (kind, name, qualname, text) not in old.get(name, []):
                    found[name].append(Definition(kind, name, qualname, change.new_path, text))
    new_crates, new_modules = {}, set()
    for change in changes or ():
        if change.new_mode != ABSENT_MODE:
            crate = index.commit_crate_of(sha, change.new_path)
            if crate != index.crate_of(change.new_path):
                new_crates[index.added_package(sha, crate)] = crate
                new_modules.add((crate, module_path(change.new_path).partition("::")[0]))
    return SameCommit(sha, found, new_crates, new_modules)
