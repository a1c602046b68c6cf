"""A commit in, the repository's symbol index at that commit out: who defines what, where.

The index holds the definitions (structs, enums, traits, functions, macros, consts, type
aliases) of every Rust file in the commit's tree, and the crate layout (Cargo package
names, each file's module path) needed to resolve `use` paths. It is moved from one commit
to the next by applying only the files that differ, and the definitions of the file
versions in the tree a worker's block of commits ends with are stored in the cache under
their git blob ids, so a new process (a `doit` after `git pull`, another worker) builds its
index from there without parsing the files again.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import NamedTuple

from pipeline import store
from pipeline.git.history import TreeReader, list_tree, tree_changes
from pipeline.rust.files import module_path, path_skip_reason, skip_reason
from pipeline.rust.parsing import RecentParses
from pipeline.rust.syntax import ANALYSER_VERSION, analyse, children_by_parent
from pipeline.text import decode

# Analysis kind -> context kind (the marker the example uses for it).
DEFINITION_KINDS = {"struct": "struct", "union": "struct", "type": "struct", "enum": "enum",
                    "trait": "trait", "fn": "fn", "macro_rules": "macro", "const": "const",
                    "static": "const"}
# `[project]`: the manifests of before 2016 (cargo's own until then).
_PACKAGE_NAME = re.compile(rb'^\[(?:package|project)\][^\[]*?^\s*name\s*=\s*"([^"]+)"',
                           re.MULTILINE | re.DOTALL)
# Where the library's root file is when not src/lib.rs (`[[lib]]` in early manifests).
_LIBRARY_PATH = re.compile(rb'^\[\[?lib\]\]?[^\[]*?^\s*path\s*=\s*"([^"]+)"',
                           re.MULTILINE | re.DOTALL)
# Definitions of recent file versions kept in memory (the rest are a cache read away).
_BLOB_MEMO_SIZE = 3_000
_INDEXED = (b".rs", b"Cargo.toml")
# Bump when definitions_in changes: part of every definitions cache key.
DEFINITIONS_VERSION = 4


class Definition(NamedTuple):
    kind: str          # context kind: struct, enum, trait, fn, macro, const
    name: str
    qualname: str      # within its file, e.g. `inner::Peer`
    path: str
    text: str          # what the context shows: docs and header, full text for data types


def _header(source: bytes, item: dict) -> str:
    return decode(source[item["start_byte"]:item["body_start"]]).rstrip()


def _snippet(source: bytes, item: dict, children: list) -> str:
    """Data types in full; functions as docs + signature; traits as member signatures."""
    if item["kind"] == "fn":
        return _header(source, item) + " { /* … */ }"
    if item["kind"] == "trait":
        members = []
        for child in children:
            end = child["body_start"] if child["kind"] == "method" else child["end_byte"]
            # A method's header ends where its body starts: after a `where` clause's trailing
            # comma, which reads better dropped before the `;` that ends the signature.
            text = decode(source[child["start_byte"]:end]).rstrip().removesuffix(",")
            members.append("    " + text + (";" if not text.endswith(";") else ""))
        return _header(source, item) + " {\n" + "\n".join(members) + "\n}"
    return decode(source[item["start_byte"]:item["end_byte"]])


def definitions_in(source: bytes, analysis: dict) -> list:
    """(kind, name, qualname, text) of the file's definitions outside impls and traits:
    a Definition without its path, since the same file version may lie at several paths."""
    items, found = analysis["items"], []
    children = children_by_parent(items)
    for index, item in enumerate(items):
        kind = DEFINITION_KINDS.get(item["kind"])
        parent = items[item["parent"]]["kind"] if item["parent"] >= 0 else "mod"
        if kind and parent == "mod":
            found.append((kind, item["name"], item["qualname"],
                          _snippet(source, item, children.get(index, []))))
    return found


def definitions_path(cache_root, blob: str, max_file_bytes: int) -> Path:
    """Where the definitions of one file version are stored."""
    key = store.content_key([blob, ANALYSER_VERSION, DEFINITIONS_VERSION, max_file_bytes])
    return store.record_path(cache_root, "definitions", key)


def _module_file_order(crate: str, path: str) -> tuple:
    """Which of several files of crate giving one module is its file: those under the
    crate's own src/ first (a fixture's `containers/bar/src/lib.rs` in cargo-test-support
    is no root of that crate, for all its module path), lib.rs before main.rs, then by
    path."""
    return (not path.startswith(f"{crate}/src/" if crate else "src/"),
            path.rpartition("/")[2] == "main.rs", path)


class SymbolIndex:
    """The definitions and crate layout of one tree, moved from commit to commit."""

    def __init__(self, repo, reader, parses: RecentParses, cache_root, max_file_bytes: int,
                 exclude_globs=()):
        self.repo, self.reader = repo, reader
        self.trees = TreeReader(repo)           # diffs between the commits it moves to
        self.exclude_globs = tuple(exclude_globs)    # with vendored code: never indexed
        self.cache_root, self.max_file_bytes = cache_root, max_file_bytes
        self.tree: dict = {}                      # path -> blob sha (.rs and Cargo.toml)
        self._manifests: dict = {}                # path -> blob sha of the Cargo.toml files
        self.by_name: dict = defaultdict(dict)    # name -> {path: [Definition]}
        self.modules: dict = {}                   # (crate dir, module path) -> file path
        self._module_files: dict = {}             # (crate dir, module path) -> its file paths
        self.crate_dirs: dict = {}                # crate name (as in `use`) -> crate dir
        self._crate_set: set = set()              # the crate directories crate_dirs names
        self._crate_of: dict = {}                 # path -> crate_of(path), for crate_dirs
        self._added_packages = (None, {})         # (commit, {directory: added_package})
        self._manifest_facts: dict = {}           # Cargo.toml blob -> _manifest's
        self.commit = None
        # The chunker's parses: it has usually just parsed the versions the index needs.
        self.parses = parses
        self._blob_memo: OrderedDict = OrderedDict()
        # blob -> (its record's path, its definitions): computed, not stored yet (see
        # store_definitions).
        self._unstored: dict = {}

    def file_definitions(self, path: str, blob: str | None) -> dict:
        """name -> [(kind, name, qualname, text)] defined by one file version, in file order:
        memoised, since most files outlive many commits, and stored (by store_definitions),
        so that no later run parses the version again for them."""
        if blob is None:
            return {}
        if blob in self._blob_memo:
            self._blob_memo.move_to_end(blob)
            return self._blob_memo[blob]
        grouped: dict = {}
        for definition in self._found_definitions(path, blob):
            grouped.setdefault(definition[1], []).append(tuple(definition))
        self._blob_memo[blob] = grouped
        if len(self._blob_memo) > _BLOB_MEMO_SIZE:
            self._blob_memo.popitem(last=False)
        return grouped

    def _found_definitions(self, path: str, blob: str) -> list:
        """One file version's definitions as stored: those extracted since the last
        store_definitions (a version the memo let go within a block is not read or parsed
        again), else the stored record, else extracted now."""
        if blob in self._unstored:
            return self._unstored[blob][1]
        stored_at = definitions_path(self.cache_root, blob, self.max_file_bytes)
        found = store.read_record(stored_at)
        if found is None:
            # Usually the chunker has just parsed this version; if not, it is read and
            # parsed without displacing the versions the chunker will need next.
            parsed = self.parses.known(path, blob)
            source = parsed.source if parsed is not None else self.reader.read(blob)
            found = []
            if source is not None and skip_reason(source, self.max_file_bytes) is None:
                parsed = parsed or self.parses.parse(path, source, keep=False)
                found = definitions_in(source, analyse(parsed))
            if source is not None:                # a missing object may come back: no record
                self._unstored[blob] = (stored_at, found)
        return found

    def store_definitions(self, commit: str) -> None:
        """Move to commit (a worker's block's last) and store the definitions computed since
        the last call of the file versions in its tree: another worker's block, or a later
        run, starts from there. Versions that came and went meanwhile are not stored
        (about half of them with blocks of 64 commits, more in longer blocks): a file
        creation costs more than extracting them again in the rare run that needs them."""
        self.move_to(commit)
        present = set(self.tree.values())
        for blob, (stored_at, found) in self._unstored.items():
            if blob in present:
                store.write_record(stored_at, found)
        self._unstored.clear()

    def _update(self, path: str, old_blob: str | None, new_blob: str | None) -> None:
        """Replace path's definitions; only the names whose definitions changed are touched
        (a new version of a large file usually changes a few of its hundreds)."""
        old, new = self.file_definitions(path, old_blob), self.file_definitions(path, new_blob)
        for name in old.keys() - new.keys():
            self.by_name[name].pop(path, None)
        for name, found in new.items():
            if old.get(name) != found:
                self.by_name[name][path] = [Definition(kind, name, qualname, path, text)
                                            for kind, _, qualname, text in found]

    def move_to(self, commit: str | None) -> None:
        """Make the index describe commit's tree (None: the empty tree before a root
        commit), touching only the files that differ."""
        if commit == self.commit:
            return
        if commit is None:
            self.tree, self._manifests, self.by_name = {}, {}, defaultdict(dict)
            self._read_crates()
            self._crate_of, self.modules, self._module_files = {}, {}, {}
            self.commit = None
            return
        if self.commit is None:
            changed = list_tree(self.repo, commit, _INDEXED)
        else:
            changed = self.trees.changes(self.commit, commit, _INDEXED)
            if changed is None:                   # an object cat-file could not give
                changed = tree_changes(self.repo, self.commit, commit, _INDEXED)
        changed = {path: blob for path, blob in changed.items()
                   if path_skip_reason(path, self.exclude_globs) is None}
        manifests_changed, files_moved = False, []
        for path, blob in changed.items():
            old_blob = self.tree.get(path)
            if old_blob == blob:
                continue
            if path.endswith(".rs"):
                self._update(path, old_blob, blob)
                if old_blob is None or blob is None:
                    files_moved.append(path)
            else:
                manifests_changed = True
                if blob is None:
                    del self._manifests[path]
                else:
                    self._manifests[path] = blob
            if blob is None:
                del self.tree[path]
            else:
                self.tree[path] = blob
        self.commit = commit
        crates_moved = self._read_crates() if manifests_changed else set()
        self._move_modules(crates_moved, files_moved)

    def _read_crates(self) -> set:
        """Read the crates from the manifests; the crate directories that came or went (a
        version bump or a renamed crate moves none)."""
        crate_names = {}
        for path, blob in self._manifests.items():
            directory = path[:-len("Cargo.toml")].rstrip("/")
            name = self._package_name(blob)
            if name is not None:
                crate_names[directory] = name
        crate_dirs = {name: directory for directory, name in crate_names.items()}
        if crate_dirs == self.crate_dirs:
            return set()
        moved = self._crate_set ^ set(crate_dirs.values())
        self.crate_dirs, self._crate_set = crate_dirs, set(crate_dirs.values())
        return moved

    def _move_modules(self, crates_moved: set, files_moved: list) -> None:
        """Place the files that came and remove those that went; where crate directories
        came or went, place again the files under them, whose crate may have changed (the
        others' innermost crate is the same, so their memoised crate_of stays right). Not
        every file again: cargo's test fixtures add and remove crates every few commits."""
        came = {path for path in files_moved if path in self.tree}
        for path in files_moved:
            if path not in came:          # under the crate it was placed with
                self._place_module(path, False)
        if crates_moved:
            prefixes = tuple(f"{directory}/" for directory in crates_moved)
            # Placed files, and paths only asked for (a chunk's new file, at its parent).
            under = [path for path in self._crate_of
                     if "" in crates_moved or path.startswith(prefixes)]
            for path in under:
                if path in self.tree and path.endswith(".rs") and path not in came:
                    self._place_module(path, False)
                    came.add(path)
            for path in under:
                del self._crate_of[path]
        for path in sorted(came):
            self._place_module(path, True)

    def _place_module(self, path: str, present: bool) -> None:
        """Add (present) or remove a file as its module's file. Where several files give one
        module, the first by _module_file_order wins (a crate with lib.rs and main.rs is
        used as a library): the same choice whatever the order the files came in."""
        key = (self.crate_of(path), module_path(path))
        order = functools.partial(_module_file_order, key[0])
        files = self._module_files.setdefault(key, set())
        winner = self.modules.get(key)
        if present:
            files.add(path)
            # Only the new file can displace the winner: no min over all of them, which made
            # placing every file quadratic in the files of one module (cargo's test fixtures).
            if winner is None or order(path) < order(winner):
                self.modules[key] = path
        else:
            files.discard(path)
            if not files:
                del self._module_files[key]
                self.modules.pop(key, None)
            elif path == winner:
                self.modules[key] = min(files, key=order)

    def _manifest(self, blob: str) -> tuple | None:
        """(package name as `use` writes it, library root file's path in the package) of a
        Cargo.toml version, read once: the crates are read again whenever a manifest
        changes, and most of them stay."""
        if blob not in self._manifest_facts:
            data = self.reader.read(blob)
            if data is None:
                return None            # not remembered: a missing object may come back
            name, path = _PACKAGE_NAME.search(data), _LIBRARY_PATH.search(data)
            self._manifest_facts[blob] = (
                name.group(1).decode().replace("-", "_") if name else None,
                path.group(1).decode(errors="replace") if path else "src/lib.rs")
        return self._manifest_facts[blob]

    def _package_name(self, blob: str) -> str | None:
        facts = self._manifest(blob)
        return facts[0] if facts is not None else None

    def library_root(self, crate: str) -> list:
        """The module path of the crate's library root: [] for src/lib.rs, ["cargo"] for
        pre-2018 cargo's `[lib] path = "src/cargo/lib.rs"`, where `cargo::core::Package`
        is src/cargo/core's: for the crates a `use` names by package name (a file's own
        crate goes by its files, rust.files._library_root)."""
        blob = self._manifests.get(f"{crate}/Cargo.toml" if crate else "Cargo.toml")
        facts = self._manifest(blob) if blob is not None else None
        if facts is None:
            return []
        path = f"{crate}/{facts[1]}" if crate else facts[1]
        return [part for part in module_path(path).split("::") if part]

    def crate_of(self, path: str) -> str:
        """The directory of the innermost crate (Cargo.toml) containing path ('' if none),
        memoised until the crates change: context resolution asks for every candidate
        definition's."""
        if path not in self._crate_of:
            directory = path
            while directory:
                directory = directory.rpartition("/")[0]
                if directory in self._crate_set:
                    break
            self._crate_of[path] = directory
        return self._crate_of[path]

    def commit_crate_of(self, commit: str, path: str) -> str:
        """The crate of path in the tree of commit, a child of the index's commit: the
        index's crate_of, unless commit adds a package manifest in a directory between path
        and that crate. The file is then in a crate the index's tree lacks (ripgrep's
        `grep-searcher`, added whole), and nothing there is its crate's."""
        crate, directory = self.crate_of(path), path.rpartition("/")[0]
        while directory and directory != crate:         # innermost first
            if self.added_package(commit, directory) is not None:
                return directory
            directory = directory.rpartition("/")[0]
        return crate

    def added_package(self, commit: str, directory: str) -> str | None:
        """The package name (as `use` writes it) of the manifest in directory in commit's
        tree, asked of a directory below every crate of the index's tree that contains it
        (so a package the commit adds); None if there is none. Memoised for the commit."""
        if self._added_packages[0] != commit:
            self._added_packages = (commit, {})
        memo = self._added_packages[1]
        if directory not in memo:
            blob = self.trees.file_blob(commit, f"{directory}/Cargo.toml")
            memo[directory] = self._package_name(blob) if blob is not None else None
        return memo[directory]

    def definitions(self, name: str) -> list:
        return [d for defs in self.by_name.get(name, {}).values() for d in defs]

