"""Settings and commit shas in, their chunk or token shards in the cache out, in one process.

A Worker holds everything a process keeps while it walks the history: the repository, one
persistent `git cat-file` reader, the recent parses, the symbol index (which shares those
parses) and the tokenizer. It is built once per process (the doit process, or each pool
worker) and passed where it is needed, so no stage keeps state of its own.
"""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path

from pipeline import store
from pipeline.chunks.shard import build_chunk_shard, chunk_shard_path, shard_key
from pipeline.config import Settings
from pipeline.git.commit_list import current_pointer, read_commit_list
from pipeline.git.history import BlobReader, open_repository
from pipeline.merge.commit_rows import commit_rows
from pipeline.merge.decoding import Decoder
from pipeline.merge.parts import tensors_here, write_part
from pipeline.merge.summaries import store_new_summaries, summarize
from pipeline.records import ChunkShard, Commit, TokenShard, to_plain
from pipeline.rust.parsing import RecentParses
from pipeline.rust.symbols import SymbolIndex
from pipeline.tokens.layout import layout_of
from pipeline.tokens.segments import (build_token_shard, plain_token_shard, token_shard_key,
                                      token_shard_path)
from pipeline.tokens.text_ids import TextIds
from pipeline.tokens.tokenizer import current_tokenizer_info, load_tokenizer

READERS = {"chunks": ChunkShard.from_plain, "tokens": TokenShard.from_plain}


class Worker:
    """One process's repository, reader, parses, symbol index and tokenizer."""

    def __init__(self, settings: Settings, read_listing=None, pooled: bool = False):
        """read_listing() gives the run's commit list (the run session's, read once per
        run); by default it is read from the cache. pooled: a pool's worker, which goes on
        from the chunks stage to the tokens stage (see _enter)."""
        self.settings = settings
        self._pooled = pooled
        self._read_listing = read_listing or (
            lambda: read_commit_list(current_pointer(settings)))
        self.repo = open_repository(settings.repository)
        self.reader = BlobReader(self.repo)
        self.index = self._new_index()
        self._stage = "chunks"              # the stage of the last block built
        self._listing: dict | None = None
        self._by_sha: dict | None = None
        self._tokenizer = None              # (info, tokenizer, layout)
        self._text_ids: TextIds | None = None   # the tokenizer's recent encodings
        self._decoder: Decoder | None = None    # and recent decodings (for rows)

    def _new_index(self) -> SymbolIndex:
        return SymbolIndex(self.repo, self.reader, RecentParses(), self.settings.cache,
                           self.settings.max_file_bytes, self.settings.exclude_globs())

    def listing(self) -> dict:
        """The run's commit list, read at first use (a Worker serves one run: the run
        session closes it, a pool ends with its stage). The reader learns from it which
        blobs a partial clone lacks."""
        if self._listing is None:
            self._listing = self._read_listing()
            partial = self._listing.get("partial")
            self.reader.missing = frozenset(self._listing["missing"]) if partial else None
        return self._listing

    def commit(self, sha: str) -> Commit:
        if self._by_sha is None:         # plain: only the commits built become Commits
            self._by_sha = {commit["sha"]: commit for commit in self.listing()["commits"]}
        return Commit.from_plain(self._by_sha[sha])

    def tokenizer(self) -> tuple:
        """(info, tokenizer, layout) of the run's tokenizer, loaded at first use."""
        if self._tokenizer is None:
            info = current_tokenizer_info(self.settings)
            tokenizer = load_tokenizer(info["path"])
            self._tokenizer = (info, tokenizer, layout_of(tokenizer))
            self._text_ids = TextIds(tokenizer)
        return self._tokenizer

    def path(self, stage: str, sha: str) -> Path:
        if stage == "chunks":
            return chunk_shard_path(self.settings, sha)
        return token_shard_path(self.settings, sha, self.tokenizer()[0]["hash"])

    def make(self, stage: str, sha: str) -> tuple:
        """The stage's shard of sha, and its record (plain values) to store."""
        if stage == "chunks":
            shard = build_chunk_shard(self.settings, self.commit(sha), self.repo, self.reader,
                                      self.index)
            return shard, to_plain(shard)
        _, tokenizer, layout = self.tokenizer()
        shard = build_token_shard(self.settings, tokenizer, layout, self.shard("chunks", sha),
                                  self._text_ids)
        return shard, plain_token_shard(shard)

    def build(self, stage: str, sha: str):
        """Build and store the stage's shard of sha; returns it."""
        shard, plain = self.make(stage, sha)
        store.write_record(self.path(stage, sha), plain)
        return shard

    def shard(self, stage: str, sha: str):
        """The stage's shard of sha from the cache. One that is damaged or gone is rebuilt
        here, by its own stage's code, and reported (by store.read_record): its task, seeing
        its file in place or having run already, would not build it again."""
        plain = store.read_record(self.path(stage, sha))
        return READERS[stage](plain) if plain is not None else self.build(stage, sha)

    def _enter(self, stage: str) -> None:
        """A pool's worker drops what the stage it leaves kept and the next does not use:
        going on to the tokens stage, its symbol index and parses (a few hundred MB on a
        large history) and its `git cat-file` process (the tokens stage reads no blobs);
        going on to write the merge's parts, its recent encodings. (A shard rebuilt later,
        such as a damaged chunk shard rebuilt for its tokens, starts them again: slower,
        the same shard.) The doit process's worker builds a few commits and is closed
        before the merge: it keeps them."""
        if self._pooled and stage != self._stage and stage in ("tokens", "parts"):
            if stage == "tokens":
                self.index = self._new_index()
                self.repo.git.clear_cache()
            elif self._tokenizer is not None:
                self._text_ids = TextIds(self._tokenizer[1])
            _return_freed_memory()
        self._stage = stage

    def build_block(self, stage: str, shas: list) -> list:
        """Build the stage's shard of each sha, in order; returns shas. With token shards,
        the block's summaries for the merge (see summaries.store_new_summaries)."""
        self._enter(stage)
        summaries = {}
        for sha in shas:
            shard = self.build(stage, sha)
            if stage == "tokens":
                key = token_shard_key(self.settings, shard_key(self.settings, sha),
                                      self.tokenizer()[0]["hash"])
                summaries[key] = summarize(shard)
        store_new_summaries(self.settings, summaries)
        self._end_block(stage, shas)
        return shas

    def write_part(self, out: Path, name: str, wanted: list) -> tuple:
        """Write one part of the merge into out, as the merge itself would (parts.write_part;
        its commits' rows packed and stored where no record holds them); returns its key and
        record. wanted: (rows key, history position, kept positions, repository name, sha,
        committer time) of each of its commits, of this repository."""
        self._enter("parts")
        _, tokenizer, layout = self.tokenizer()
        if self._decoder is None:           # made here: only a pool's worker packs rows
            self._decoder = Decoder(tokenizer)
        commits = {position: (sha, time) for _, position, _, _, sha, time in wanted}

        def records_of():
            return commit_rows(self.settings, layout, self._decoder,
                               [commit[:4] for commit in wanted],
                               lambda position: self.shard("tokens", commits[position][0]),
                               commits.__getitem__)

        return write_part(self.settings, out, name, [commit[0] for commit in wanted],
                          records_of, layout.pad_id, None, tensors_here)

    def _end_block(self, stage: str, shas: list) -> None:
        if stage == "chunks" and shas:
            self.index.store_definitions(shas[-1])

    def build_block_unstored(self, stage: str, shas: list) -> list:
        """Build the stage's shard of each sha, in order, storing none: (sha, path, record)
        of each, for the doit process to store when the task the commit belongs to runs.
        (Summaries are left to the merge, which makes them from the shards.)"""
        self._enter(stage)
        built = [(sha, self.path(stage, sha), self.make(stage, sha)[1]) for sha in shas]
        self._end_block(stage, shas)
        return built

    def close(self) -> None:
        self.reader.close()


def _return_freed_memory() -> None:
    """Free what the dropped objects held and give it back to the system: glibc keeps freed
    memory for the process otherwise, and the tokens stage would add its own on top."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):       # not glibc: the memory is reused, not returned
        pass
