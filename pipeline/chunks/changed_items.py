"""A commit's changed Rust files in, their chunks out: each changed item, old and new code.

Old and new items of a file are paired by qualified name (so a method moved within its
file is one chunk) and compared by text. What lies outside every item (use lines, comments)
is compared as one file-level chunk, so no change vanishes. A file that does not parse
cleanly falls back to windows of lines around the changed lines.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field

from pipeline.chunks.targets import chunk_skip_reason, first_of_each_edit
from pipeline.chunks.pieces import ELISION, pack, split_pieces, with_signature
from pipeline.chunks.units import (as_unit, changed_pairs, code_lines, inside, pair_texts,
                                   residual, same_bytes, signatures, text_source, units)
from pipeline.config import Settings
from pipeline.git.history import BlobReader
from pipeline.records import ABSENT_MODE, NULL_BLOB, SKIPPED_MODES, Chunk, Commit, FileChange
from pipeline.rust.files import module_path, path_skip_reason, skip_reason
from pipeline.rust.parsing import ParsedFile, RecentParses, common_prefix, common_suffix
from pipeline.rust.references import REFERENCE_ROLES, item_references
from pipeline.rust.symbols import DEFINITION_KINDS
from pipeline.rust.syntax import analyse, inline_scope
from pipeline.text import cut_at_line, decode, words

FALLBACK_CONTEXT_LINES = 3
def _changed_ranges(old: str, new: str, first_line: int) -> list:
    """New-side line ranges [start, end] (1-based, in the file) that differ from old."""
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    ranges = []
    for tag, _, _, start, end in matcher.get_opcodes():
        if tag != "equal":
            ranges.append([first_line + start, first_line + max(start, end - 1)])
    return ranges


def _make_chunk(settings, change, kind, qualname, change_kind, old, new, first_line, uses,
                part="") -> Chunk:
    """A chunk; `uses` holds what context resolution needs: refs and owner."""
    old_code, old_cut = cut_at_line(old, settings.max_item_chars)
    new_code, new_cut = cut_at_line(new, settings.max_item_chars)
    return Chunk(path=change.new_path, old_path=change.old_path, kind=kind, qualname=qualname,
                 change=change_kind, old_code=old_code, new_code=new_code,
                 changed_lines=_changed_ranges(old, new, first_line),
                 truncated=old_cut or new_cut, part=part, **uses)


def _unit_chunks(settings, change, item, qualname, change_kind, old, new, uses,
                 signatures=("", "")) -> list:
    """One chunk per changed item; an item over budget becomes one chunk per changed region,
    aligned between old and new along its syntax children and packed up to the budget.
    A piece that does not start the item begins with the item's signature and an elision
    marker, so it says where it belongs."""
    limit = settings.max_item_chars
    if max(len(old), len(new)) <= limit:
        return [_make_chunk(settings, change, item["kind"], qualname, change_kind, old, new,
                            item["start_line"], _uses_in(uses, old + "\n" + new))]
    # Room for the signature and the marker a piece may carry, so it still fits the limit.
    limit = max(limit - max(map(len, signatures)) - len(ELISION) - 64, limit // 2)
    # Both sides are cut as one over the limit would be, so that their pieces align: a side
    # under it kept whole matched none of the other's pieces, and the item's parts were
    # paired by their order (the unchanged tail of a function as an addition).
    cut_limit = max(min([limit] + [len(text) - 1 for text in (old, new) if text]), 1)
    old_pieces, new_pieces = split_pieces(old, cut_limit), split_pieces(new, cut_limit)
    matcher = difflib.SequenceMatcher(None, old_pieces, new_pieces, autojunk=False)
    regions = _anchored([(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes()
                         if tag != "equal"], old_pieces)
    chunks = []
    for number, (i1, i2, j1, j2) in enumerate(regions, start=1):
        parts = _paired_parts(old_pieces[i1:i2], new_pieces[j1:j2], limit)
        line = item["start_line"] + "".join(new_pieces[:j1]).count("\n")
        for k, (old_part, new_part) in enumerate(parts):
            uses_here = _uses_in(uses, old_part + "\n" + new_part)
            old_code = with_signature(old_part, signatures[0], i1 == k == 0)
            new_code = with_signature(new_part, signatures[1], j1 == k == 0)
            # The carried signature is no line of the file: line numbers start after it.
            carried = new_code.count("\n") - new_part.count("\n")
            chunks.append(_make_chunk(settings, change, item["kind"], qualname, change_kind,
                                      old_code, new_code, line - carried, uses_here,
                                      part=f"{number}.{k + 1} of {len(regions)} regions"))
            line += new_part.count("\n")
    return chunks


def _paired_parts(olds: list, news: list, limit: int) -> list:
    """(old part, new part) of a changed region's pieces, each side within limit where
    its pieces allow. As many pieces on both sides (each statement of a method edited, as
    a renamed field does) are packed in pairs, piece k with piece k, so that a part's old
    code is what its new code replaced: packed side by side, one side's longer pieces
    shifted every later pairing, and the last new part had no old code. Otherwise each
    side is packed and the parts paired in order."""
    if len(olds) == len(news):
        parts: list = []
        for old, new in zip(olds, news):
            if parts and len(parts[-1][0]) + len(old) <= limit \
                    and len(parts[-1][1]) + len(new) <= limit:
                parts[-1] = (parts[-1][0] + old, parts[-1][1] + new)
            else:
                parts.append((old, new))
        return parts
    old_parts, new_parts = pack(olds, limit), pack(news, limit)
    return [(old_parts[k] if k < len(old_parts) else "", new_parts[k] if k < len(new_parts)
             else "") for k in range(max(len(old_parts), len(new_parts)))]


def _anchored(regions: list, old_pieces: list) -> list:
    """The changed regions (old pieces i1:i2, new pieces j1:j2) of a split item, each that
    only adds or only removes pieces grown by the unchanged piece before it (blank ones
    and the one before them; after it, at the item's start) on both sides. Alone, a row
    added to a long table was a target with no old code, which said nothing of where it
    goes, and a removal had no new code to learn (a moved block was only its insertion).
    Regions that then overlap are one."""
    grown: list = []
    for i1, i2, j1, j2 in regions:
        if i1 == i2 or j1 == j2:
            if i1 > 0:
                i1, j1 = i1 - 1, j1 - 1
                while i1 > 0 and not old_pieces[i1].strip():
                    i1, j1 = i1 - 1, j1 - 1
            elif i2 < len(old_pieces):
                i2, j2 = i2 + 1, j2 + 1
        if grown and i1 < grown[-1][1]:
            i1, j1 = grown[-1][0], grown[-1][2]
            grown.pop()
        grown.append((i1, i2, j1, j2))
    return grown


def _uses_in(uses: dict, text: str) -> dict:
    """The item's uses narrowed to the names that occur in text (the chunk's own code: a
    piece of the item, or a container's header): each chunk gets the context of its own
    references. The owner stays: every piece is code of the same impl or trait."""
    found = words(text)
    return {"refs": {role: [name for name in names if name.rsplit("::", 1)[-1] in found]
                     for role, names in uses["refs"].items()}, "owner": uses["owner"]}


def _uses(items: list, places: list) -> dict:
    """The names the items (at places: (parsed file, item index)) reference, and the impl or
    trait they belong to."""
    found = [item_references(file, index) for file, index in places]
    refs = {role: sorted({name for names in found for name in names[role]})
            for role in REFERENCE_ROLES}
    owner = next((item["owner"] or (item["name"] if item["kind"] == "impl" else "")
                  for item in items if item), "")
    return {"refs": refs, "owner": owner}


_CONTAINERS = ("impl", "trait")
# Generic arguments with none inside: taken off from the innermost out.
_GENERICS = re.compile(r"<[^<>]*>")
# How much of a removed item's lines an added one must share to be taken for it renamed.
_RENAMED_SHARE = 0.6
# Files with more names gone or new than this are not searched for renames (a rewrite).
_MOST_RENAMES = 40


def _without_generics(name: str) -> str:
    """A qualified name without the generic arguments of its impl: `impl Drain<'a>::run`
    -> `impl Drain::run`."""
    while "<" in name:
        stripped = _GENERICS.sub("", name)
        if stripped == name:
            break
        name = stripped
    return name


def _regeneric(old_units: dict, new_units: dict) -> dict:
    """new name -> old name of the impls (and their members) whose generic arguments
    alone the change renamed, each one of a kind on both sides. Cargo's 305efa63cc made
    `impl<'cfg> DrainState<'cfg>` `impl<'gctx> DrainState<'gctx>`: every method of such an
    impl had a new name, and came out as new code, unchanged ones too."""
    gone: dict = {}
    came: dict = {}
    for units_, other, by_key in ((old_units, new_units, gone), (new_units, old_units, came)):
        for name in units_:
            if "<" in name and name not in other:
                by_key.setdefault(_without_generics(name), []).append(name)
    return {came[key][0]: gone[key][0] for key in came
            if len(came[key]) == 1 and len(gone.get(key, ())) == 1}


def _paired_names(old, new, old_units: dict, new_units: dict) -> dict:
    """new name -> old name of the items the change renamed (the others keep their name):
    impls whose generic arguments alone changed, then renamed impls and traits, whose
    members follow them, then any other renamed item."""
    renamed = _regeneric(old_units, new_units)
    renamed.update(_renames(old, new, old_units, new_units, renamed, _CONTAINERS))
    renamed.update(_members(old, new, renamed, old_units, new_units))
    renamed.update(_renames(old, new, old_units, new_units, renamed))
    return renamed


def _members(old, new, renamed: dict, old_units: dict, new_units: dict) -> dict:
    """new name -> old name of the members of the renamed impls and traits (renamed: new
    -> old): cargo's 305efa63cc renamed `Config` to `GlobalContext`, and `impl Config`'s
    150 methods are `impl GlobalContext`'s, too many names for _renames to compare."""
    found: dict = {}
    taken = set(renamed.values())
    for new_name, old_name in renamed.items():
        new_prefix = _members_prefix(new, new_units[new_name][0])
        old_prefix = _members_prefix(old, old_units[old_name][0])
        for name in new_units:
            if name.startswith(new_prefix) and name not in old_units and name not in renamed:
                was = old_prefix + name[len(new_prefix):]
                if was in old_units and was not in new_units and was not in taken:
                    found[name] = was
                    taken.add(was)
    return found


def _members_prefix(file, index: int) -> str:
    """How the qualified names of an item's members begin: `impl X::` for an impl's,
    `trait X::` for a trait X's (pipeline.rust.syntax names them by their owner)."""
    item = analyse(file)["items"][index]
    if item["kind"] != "trait":
        return item["qualname"] + "::"
    scope = item["qualname"][:len(item["qualname"]) - len(item["name"])]
    return f"{scope}trait {item['name']}::"


def _renames(old, new, old_units: dict, new_units: dict, paired: dict,
             kinds: tuple = ()) -> dict:
    """new name -> old name of the items the change renamed: a name gone and a new one, of
    the same kind, in the same impl, trait or module, as many items each, whose lines are
    mostly the same (ripgrep's 27a980c renames `link` to `link_dir`: an edit, not a new
    method and a deleted one). Each name is paired once, the most alike first; names in
    paired (new -> old) are paired already. Only items of kinds, when given."""
    taken = set(paired.values())
    gone = [name for name in old_units if name not in new_units and name not in taken]
    came = [name for name in new_units if name not in old_units and name not in paired]
    if not gone or not came:
        return {}
    old_items, new_items = analyse(old)["items"], analyse(new)["items"]
    if kinds:
        gone = [name for name in gone if old_items[old_units[name][0]]["kind"] in kinds]
        came = [name for name in came if new_items[new_units[name][0]]["kind"] in kinds]
    if not gone or not came or len(gone) * len(came) > _MOST_RENAMES ** 2:
        return {}

    def shape(items, indexes, name):     # what must agree: kind, count, container
        return items[indexes[0]]["kind"], len(indexes), name.rpartition("::")[0]

    def lines(file, indexes):
        return [line.strip() for index in indexes
                for line in as_unit(file, index).text.split("\n")]

    new_shapes = {name: shape(new_items, new_units[name], name) for name in came}
    new_lines: dict = {}                 # each new name's lines, read once if compared
    candidates = []
    for old_name in gone:
        old_shape = shape(old_items, old_units[old_name], old_name)
        old_lines = None
        for new_name in came:
            if new_shapes[new_name] != old_shape:
                continue
            if old_lines is None:
                old_lines = lines(old, old_units[old_name])
            if new_name not in new_lines:
                new_lines[new_name] = lines(new, new_units[new_name])
            matcher = difflib.SequenceMatcher(None, old_lines, new_lines[new_name],
                                              autojunk=False)
            if matcher.real_quick_ratio() >= _RENAMED_SHARE and \
                    matcher.ratio() >= _RENAMED_SHARE:
                candidates.append((-matcher.ratio(), old_name, new_name))
    renamed: dict = {}
    for _, old_name, new_name in sorted(candidates):
        if new_name not in renamed and old_name not in renamed.values():
            renamed[new_name] = old_name
    return renamed


def _item_chunks(settings, change, old: ParsedFile | None, new: ParsedFile | None,
                 counts, sources: dict) -> tuple[list, list]:
    """The file's chunks and the inline module each lies in (its scope, see
    pipeline.rust.syntax); sources gets where their unit texts lie in old and new."""
    prefix = module_path(change.new_path)
    prefix = f"{prefix}::" if prefix else ""
    whole: set = set()        # (file id, index) of containers that are chunks whole
    scopes: list = []
    old_units = units(old) if old is not None else {}
    new_units = units(new) if new is not None else {}
    old_items = analyse(old)["items"] if old is not None else []
    new_items = analyse(new)["items"] if new is not None else []
    chunks = []
    renamed = _paired_names(old, new, old_units, new_units)  # new name -> old name
    gone = [name for name in old_units if name not in new_units and name not in
            renamed.values()]
    for name in list(new_units) + gone:
        olds, news = old_units.get(renamed.get(name, name), []), new_units.get(name, [])
        if len(olds) == len(news) == 1 and same_bytes(
                old.source, old_items[olds[0]], new.source, new_items[news[0]]):
            continue              # most items of a file: no text to build
        pairs = changed_pairs([as_unit(old, i) for i in olds], [as_unit(new, i) for i in news])
        for old_unit, new_unit in pairs:
            if any(inside(unit, whole) for unit in (old_unit, new_unit)):
                continue          # part of a container added or deleted whole
            texts = pair_texts(old_unit, new_unit, whole)
            if texts is None:
                counts.skipped["comment_only"] += 1
                continue
            for unit in (old_unit, new_unit):
                source = text_source(unit)
                if source is not None:
                    sources[unit.text] = source
            change_kind = ("added" if old_unit.item is None else "deleted"
                           if new_unit.item is None else "modified")
            uses = _uses([new_unit.item, old_unit.item],
                         [u.place for u in (new_unit, old_unit) if u.place])
            made = _unit_chunks(settings, change, new_unit.item or old_unit.item,
                                prefix + name, change_kind, *texts, uses,
                                signatures(old_unit, new_unit))
            scope = (inline_scope(new_items, new_unit.item) if new_unit.item is not None
                     else inline_scope(old_items, old_unit.item))
            chunks += made
            scopes += [scope] * len(made)
    old_rest = residual(old) if old is not None else ""
    new_rest = residual(new) if new is not None else ""
    if code_lines(old_rest) != code_lines(new_rest):
        file_change = "added" if old is None else "deleted" if new is None else "modified"
        made = _unit_chunks(settings, change, {"kind": "file", "start_line": 1},
                            prefix.rstrip(":") or change.new_path, file_change, old_rest,
                            new_rest, _uses([], []))
        # First, as its lines (the imports) open the file: a row showing it shows the
        # imports, which its later chunks then need not repeat (pipeline.merge.packing).
        chunks, scopes = made + chunks, [""] * len(made) + scopes
    return chunks, scopes


def _line_groups(old_lines: list, new_lines: list, context: int):
    """difflib's grouped opcodes (hunks with `context` lines around them) of two versions'
    lines, matched only between their common head and tail (but `context` lines of each):
    on a large file whose many repeated lines (`}`, blank ones) SequenceMatcher compares
    again and again, matching the whole file took 40 of 74 seconds on 1,500 cargo commits."""
    head = common_prefix(old_lines, new_lines)
    tail = common_suffix(old_lines[head:], new_lines[head:])
    skip, cut = max(head - context, 0), max(tail - context, 0)
    matcher = difflib.SequenceMatcher(None, old_lines[skip:len(old_lines) - cut],
                                      new_lines[skip:len(new_lines) - cut], autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        yield [(tag, i1 + skip, i2 + skip, j1 + skip, j2 + skip)
               for tag, i1, i2, j1, j2 in group]


def _fallback_chunks(settings, change, old_src, new_src) -> tuple[list, list]:
    """Windows of lines around each changed hunk, for files tree-sitter cannot parse
    cleanly; their scope is taken to be the file's own."""
    old_lines = decode(old_src or b"").splitlines()
    new_lines = decode(new_src or b"").splitlines()
    chunks = []
    for group in _line_groups(old_lines, new_lines, FALLBACK_CONTEXT_LINES):
        old_start, old_end = group[0][1], group[-1][2]
        new_start, new_end = group[0][3], group[-1][4]
        chunks += _unit_chunks(
            settings, change, {"kind": "lines", "start_line": new_start + 1},
            f"{change.new_path}:{new_start + 1}", "modified",
            "\n".join(old_lines[old_start:old_end]), "\n".join(new_lines[new_start:new_end]),
            _uses([], []))
    return chunks, [""] * len(chunks)


@dataclass
class FileCounts:
    """What happened to the files of one commit besides their chunks."""
    skipped: Counter = field(default_factory=Counter)    # not read, by reason
    flagged: Counter = field(default_factory=Counter)    # read with a caveat
    missing: list = field(default_factory=list)          # blob shas git could not give


def _read_side(reader: BlobReader, parses: RecentParses, path: str, blob: str, mode: str,
               settings, counts: FileCounts):
    """(bytes, ok) for one side of a change; ok False means the file was skipped and counted."""
    if blob == NULL_BLOB or mode == ABSENT_MODE:
        return None, True
    if mode in SKIPPED_MODES:
        counts.skipped[SKIPPED_MODES[mode]] += 1
        return None, False
    # The old side is usually the version the last commit that changed the file left
    # parsed: its bytes are at hand, with no round-trip to git.
    known = parses.known(path, blob)
    data = known.source if known is not None else reader.read(blob)
    if data is None:
        counts.skipped["missing_object"] += 1
        counts.missing.append(blob)
        return None, False
    reason = skip_reason(data, settings.max_file_bytes)
    if reason is not None:
        counts.skipped[reason] += 1
        return None, False
    return data, True


@dataclass
class FileChunks:
    """The chunks of one changed file and its imports ([path, alias, scope] of its `use`
    trees, pipeline.rust.syntax)."""
    path: str
    chunks: list              # Chunk
    scopes: list              # the inline module each chunk lies in ('' for the file's)
    parent_imports: list      # as the author saw them: the parent version's
    new_imports: list         # the new version's: they help resolve names, never shown
    own_names: set = field(default_factory=set)   # what the file defines, before or after

    def shown_imports(self) -> list:
        """The snippet's imports: the parent version's at the file's own scope."""
        return [[path, alias] for path, alias, scope in self.parent_imports if not scope]


def file_chunks(settings, parses: RecentParses, reader, change: FileChange,
                counts: FileCounts) -> FileChunks | None:
    """The chunks of one changed Rust file (None if it has none to read); what was skipped
    or flagged goes into counts."""
    if change.old_blob == change.new_blob:
        if change.status != "R":
            counts.skipped["mode_only_change"] += 1
        return None                      # a pure rename or a mode change: no code changed
    reason = path_skip_reason(change.new_path, settings.exclude_globs())
    if reason is not None:
        counts.skipped[reason] += 1
        return None
    old_src, old_ok = _read_side(reader, parses, change.old_path, change.old_blob,
                                 change.old_mode, settings, counts)
    new_src, new_ok = _read_side(reader, parses, change.new_path, change.new_blob,
                                 change.new_mode, settings, counts)
    if not (old_ok and new_ok) or (old_src is None and new_src is None):
        return None
    # Old before new: the new version is then parsed incrementally from the old one's tree.
    old = new = None
    if old_src is not None:
        old = parses.parse(change.old_path, old_src, blob=change.old_blob)
    if new_src is not None:
        new = parses.parse(change.new_path, new_src, change.old_path, blob=change.new_blob)
    old_an = analyse(old) if old is not None else None
    new_an = analyse(new) if new is not None else None
    imports = [an["imports"] if an else [] for an in (old_an, new_an)]
    if any(an and an["decode_errors"] for an in (old_an, new_an)):
        counts.flagged["non_utf8_decoded_with_replacement"] += 1
    sources: dict = {}    # unit text -> (parsed file, start, end): its comments are known
    if any(an and an["has_error"] for an in (old_an, new_an)):
        counts.flagged["syntax_error_fallback"] += 1
        chunks, scopes = _fallback_chunks(settings, change, old_src, new_src)
    else:
        chunks, scopes = _item_chunks(settings, change, old, new, counts, sources)
    return FileChunks(change.new_path, *_targets(chunks, scopes, settings, counts, sources),
                      *imports, own_names=_defined_names(old_an) | _defined_names(new_an))


def _defined_names(analysis: dict | None) -> set:
    """The names a file version defines outside impls and traits."""
    if analysis is None:
        return set()
    items = analysis["items"]
    return {item["name"] for item in items if item["kind"] in DEFINITION_KINDS
            and (item["parent"] < 0 or items[item["parent"]]["kind"] == "mod")}


def _targets(chunks: list, scopes: list, settings, counts: FileCounts,
             sources: dict) -> tuple[list, list]:
    """The chunks worth learning and their scopes; the others counted by reason."""
    kept, kept_scopes = [], []
    for chunk, scope in zip(chunks, scopes):
        reason = chunk_skip_reason(chunk, settings, sources)
        if reason is None:
            kept.append(chunk)
            kept_scopes.append(scope)
        else:
            counts.skipped[reason] += 1
    return kept, kept_scopes


def commit_chunks(settings: Settings, parses: RecentParses, reader: BlobReader,
                  commit: Commit, changes) -> tuple[list, FileCounts]:
    """The chunks of one commit's changes (None: a merge commit left out), file by file,
    and what was skipped or flagged on the way."""
    counts = FileCounts()
    if changes is None:
        counts.skipped["merge_commit"] += 1
    elif not changes:
        counts.skipped["commit_without_rust_changes"] += 1
    files = [file_chunks(settings, parses, reader, change, counts) for change in changes or ()]
    files = [found for found in files if found is not None]
    if not settings.keep_repeated_edits:
        _drop_repeated_edits(files, counts)
    return files, counts


def _drop_repeated_edits(files: list, counts: FileCounts) -> None:
    """Each file's chunks and scopes without those whose edit an earlier chunk of the
    commit made (targets.first_of_each_edit), counted."""
    firsts = iter(first_of_each_edit([chunk for file in files for chunk in file.chunks]))
    for file in files:
        keep = [next(firsts) for _ in file.chunks]
        if not all(keep):
            counts.skipped["repeated_edit"] += keep.count(False)
        file.chunks = [chunk for chunk, kept in zip(file.chunks, keep) if kept]
        file.scopes = [scope for scope, kept in zip(file.scopes, keep) if kept]
