"""A Rust file's path or bytes in, what it is out: its module path, or why it is not read.

Every stage that reads Rust files (the chunker, the symbol index, the tokenizer trainer)
asks path_skip_reason and skip_reason, so they all agree on which files count: never
vendored or third-party code, nor paths matching `exclude=` globs, nor binary, oversize
or generated file versions.
"""

from __future__ import annotations

import fnmatch

GENERATED_MARKERS = (b"@generated", b"DO NOT EDIT")
VENDORED_DIRECTORIES = {"vendor", "vendored", "third_party", "third-party"}


def path_skip_reason(path: str, exclude_globs=()) -> str | None:
    """Why the file at path is not read (None: it is)."""
    if VENDORED_DIRECTORIES & set(path.split("/")[:-1]):
        return "vendored_file"
    if any(fnmatch.fnmatch(path, pattern) for pattern in exclude_globs):
        return "excluded_file"
    return None


def module_path(path: str) -> str:
    """`crates/net/src/peer/mod.rs` -> `peer`: the module a file defines, within its crate."""
    parts = path[:-3].split("/") if path.endswith(".rs") else path.split("/")
    if "src" in parts:
        parts = parts[len(parts) - parts[::-1].index("src"):]
    if parts and parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts)


# Directories whose files are crates of their own (integration tests, benchmarks, examples):
# `tests/cli.rs` is the root of one whose `mod common;` is tests/common/mod.rs, beside it;
# `tests/testsuite/main.rs` the root of one whose modules lie under tests/testsuite. A
# package's binaries under src/bin are laid out alike.
_TARGET_DIRECTORIES = {"tests", "benches", "examples"}


def crate_root_module(path: str, has_file) -> list:
    """The module path (module_path's, split) of the root of the crate that the file at
    path belongs to: the library's for files under src/ (_library_root), else that of its
    binary under src/bin, integration test, benchmark or example (`tests::testsuite` for
    tests/testsuite/build.rs where has_file says tests/testsuite/main.rs exists; else
    `tests`, whose crates share tests/common/mod.rs), whose `crate::` and 2015-edition
    paths start there."""
    directories = path.split("/")[:-1]
    if "src" in directories:
        below = len(directories) - directories[::-1].index("src")    # module paths start here
        if directories[below:below + 1] != ["bin"]:
            return _library_root(directories, below, has_file)
        start, end = below, below + 1
    else:
        targets = [at for at, name in enumerate(directories) if name in _TARGET_DIRECTORIES]
        if not targets:
            return []
        start, end = 0, targets[-1] + 1
    if end < len(directories) and has_file("/".join(directories[:end + 1]) + "/main.rs"):
        end += 1
    return directories[start:end]


def _library_root(directories: list, below: int, has_file) -> list:
    """The module path of the library root above a file under src/ (directories, module
    paths starting at below): src/lib.rs's, else that of the outermost lib.rs between, where
    a manifest's `[lib] path` puts it (pre-2018 cargo's src/cargo/lib.rs, whose modules are
    `cargo::core`, ...; its 2015 `use core::Package;` names src/cargo/core). Found from the
    files, not the manifest (SymbolIndex.library_root, for the crates a `use` names): a
    file's own crate may have none yet (cargo until May 2014) or be one the commit adds,
    and going by the manifest alone lost 594 of cargo's definition snippets."""
    for end in range(below, len(directories) + 1):
        if has_file("/".join(directories[:end]) + "/lib.rs"):
            return directories[below:end]
    return []


def skip_reason(data: bytes, max_file_bytes: int) -> str | None:
    """Why a file version is not read as Rust code (None: it is)."""
    if b"\0" in data[:8192]:
        return "binary_file"
    if len(data) > max_file_bytes:
        return "oversize_file"
    if any(marker in data[:2048] for marker in GENERATED_MARKERS):
        return "generated_file"
    return None
