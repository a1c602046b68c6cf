"""The records that cross stages, one shape from where each is made to where it is read.

commit list (git) -> Commit, FileChange; chunk shard (chunks) -> ChunkShard of Chunk with
Snippet context; token shard (tokens) -> TokenShard of Segment; merge -> Example. Records
are stored as msgpack of plain values: `to_plain` gives a record's dict (nested records
too), each `from_plain` reads one back.
"""

from __future__ import annotations

import dataclasses
from array import array
from dataclasses import dataclass, field

NULL_BLOB = "0" * 40
ABSENT_MODE = "000000"          # the side of a change where the file does not exist
# Modes of tree entries that are no file to read, by what they are.
SKIPPED_MODES = {"120000": "symlink", "160000": "submodule"}


# Values to_plain returns as they are, known by their exact type without further checks.
_PLAIN_TYPES = frozenset({str, int, float, bool, bytes, type(None), dict})
_FIELD_NAMES: dict = {}          # record class -> its field names


def to_plain(value):
    """A record (or list of them) as plain dicts and lists, for msgpack. A chunk shard is
    thousands of values: each is known by its exact type first (dataclasses.fields() and
    is_dataclass() on every one took 6 % of the chunks stage)."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if dataclasses.is_dataclass(value):
            names = tuple(f.name for f in dataclasses.fields(value))
            if not isinstance(value, type):     # a record, not a record class
                _FIELD_NAMES[kind] = names
        elif isinstance(value, (list, tuple)):
            return [to_plain(item) for item in value]
        else:
            return value
    return {name: to_plain(getattr(value, name)) for name in names}


@dataclass(frozen=True)
class FileChange:
    """One changed Rust file of a commit, as `git log --raw` reports it."""
    status: str        # git's letter: A added, M modified, D deleted, R renamed, T type change
    old_mode: str
    new_mode: str
    old_blob: str      # NULL_BLOB when there is no old version
    new_blob: str
    old_path: str
    new_path: str

    def as_list(self) -> list:
        return [self.status, self.old_mode, self.new_mode, self.old_blob, self.new_blob,
                self.old_path, self.new_path]


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple
    author_time: int
    committer_time: int
    author: str
    message: str
    changes: tuple     # FileChange of Rust files only

    def as_dict(self) -> dict:
        # Changes as lists, not dicts: a 20,000-commit list stays small.
        return {"sha": self.sha, "parents": list(self.parents), "author_time": self.author_time,
                "committer_time": self.committer_time, "author": self.author,
                "message": self.message, "changes": [c.as_list() for c in self.changes]}

    @staticmethod
    def from_plain(data: dict) -> "Commit":
        return Commit(data["sha"], tuple(data["parents"]), data["author_time"],
                      data["committer_time"], data["author"], data["message"],
                      tuple(FileChange(*c) for c in data["changes"]))


@dataclass(frozen=True)
class Snippet:
    """One piece of cross-file context: the file's imports, or a definition."""
    kind: str          # import, struct, enum, trait, fn, macro, const
    path: str          # the defining file (the chunk's own file for its imports)
    name: str          # qualified name within its file ('imports' for imports)
    text: str
    origin: str = "parent"   # parent: the parent commit's tree; commit: this commit's

    @staticmethod
    def from_plain(data: dict) -> "Snippet":
        return Snippet(**data)


@dataclass
class Chunk:
    """One changed item (or a piece of one, or a file's lines outside items)."""
    path: str
    old_path: str
    kind: str                  # fn, method, struct, impl, ..., file, lines
    qualname: str
    change: str                # added, deleted, modified
    old_code: str
    new_code: str
    changed_lines: list        # new-side [first, last] line ranges that differ
    truncated: bool            # a side was cut to max_item_chars
    part: str                  # 'N.K of M regions' for a piece of an oversize item
    refs: dict                 # role -> names the code references
    owner: str                 # the impl or trait a method belongs to
    context: list = field(default_factory=list)      # Snippet, within the budgets
    spare_context: list = field(default_factory=list)  # Snippet, next in line

    @staticmethod
    def from_plain(data: dict) -> "Chunk":
        return Chunk(**{**data, "context": [Snippet.from_plain(s) for s in data["context"]],
                        "spare_context": [Snippet.from_plain(s) for s in data["spare_context"]]})


@dataclass
class ChunkShard:
    """What the chunks stage stores for one commit."""
    sha: str
    message: str
    committer_time: int
    chunks: list                   # Chunk
    skipped: dict                  # reason -> files (or commits) not read
    flagged: dict                  # caveat -> files read with it
    missing_objects: list          # blob shas git could not give
    context_counts: dict = field(default_factory=dict)   # how names were resolved
    seconds: dict = field(default_factory=dict)          # stage -> build seconds

    @staticmethod
    def from_plain(data: dict) -> "ChunkShard":
        return ChunkShard(**{**data, "chunks": [Chunk.from_plain(c) for c in data["chunks"]]})


@dataclass
class ContextPiece:
    """One context snippet as token ids: its marker, then its text."""
    key: str                   # the same snippet has the same key wherever it appears
    kind: str
    path: str
    name: str
    origin: str                # parent or commit (see Snippet)
    chars: int                 # its text's length, for the character budget
    spare: bool                # offered only in the room a repeated snippet leaves
    ids: bytes                 # int32 token ids (machine order)

    @staticmethod
    def from_plain(data: dict) -> "ContextPiece":
        return ContextPiece(**data)


@dataclass
class Segment:
    """One chunk as token ids, in parts the merge joins into rows (pipeline.merge.packing)."""
    head: bytes                # <filename>PATH (int32 token ids, machine order)
    context: list              # ContextPiece, most important first
    old: bytes                 # <commit_before>OLD CODE
    new: bytes                 # NEW CODE: the loss span
    path: str
    item: str
    kind: str
    change: str
    leak_keys: dict            # guard mode -> digests that find this change again
    target_key: str            # digest of the new code: the same target anywhere
    field_tokens: dict         # old_code, new_code -> tokens kept

    @staticmethod
    def from_plain(data: dict) -> "Segment":
        return Segment(**{**data, "context": [ContextPiece.from_plain(c)
                                              for c in data["context"]]})


@dataclass
class TokenShard:
    """What the tokens stage stores for one commit."""
    sha: str
    committer_time: int
    message: bytes             # the commit message's token ids (int32)
    segments: list             # Segment
    seconds: dict
    truncations: dict          # field -> times cut to its budget
    skipped: dict
    flagged: dict
    missing_objects: list
    context_counts: dict

    @staticmethod
    def from_plain(data: dict) -> "TokenShard":
        return TokenShard(**{**data, "segments": [Segment.from_plain(s)
                                                  for s in data["segments"]]})


@dataclass
class Example:
    """Segments of one commit joined: one row in commit mode."""
    input_ids: array           # int32
    loss_spans: list           # [start, end) ranges that carry loss
    paths: list                # per segment
    items: list
    parts: list                # per segment: (Segment, ContextPiece shown, message shown?)
    context_dropped: int = 0   # snippets left out for lack of room
