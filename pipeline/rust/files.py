"""A Rust file's path or bytes in, what it is out: its module path, or why it is not read.

Every stage that reads Rust files (the chunker, the symbol index, the tokenizer trainer)
asks skip_reason, so they all agree on which file versions count.
"""

from __future__ import annotations

GENERATED_MARKERS = (b"@generated", b"DO NOT EDIT")


def module_path(path: str) -> str:
    """`crates/net/src/peer/mod.rs` -> `peer`: the module a file defines, within its crate."""
    parts = path[:-3].split("/") if path.endswith(".rs") else path.split("/")
    if "src" in parts:
        parts = parts[len(parts) - parts[::-1].index("src"):]
    if parts and parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts)


def skip_reason(data: bytes, max_file_bytes: int) -> str | None:
    """Why a file version is not read as Rust code (None: it is)."""
    if b"\0" in data[:8192]:
        return "binary_file"
    if len(data) > max_file_bytes:
        return "oversize_file"
    if any(marker in data[:2048] for marker in GENERATED_MARKERS):
        return "generated_file"
    return None
