"""One `doit` run in, what it holds out: the cache lock, the local worker, the worker pool.

The run session takes the lock when the commits task starts and closes at the end of the
run, however it ends (success, a failed task, Ctrl-C): the `commits` task's teardown
closes it, and doit runs teardowns whatever the reporter. Closing kills the pool's
workers (their git processes end with them), ends the local worker's git process and
releases the lock.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import threading
from pathlib import Path

from pipeline import store
from pipeline.chunks.shard import shard_keys
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.git.commit_list import current_pointer, read_commit_list
from pipeline.merge.report import start_drawer
from pipeline.run import events, ray_pool
from pipeline.run.part_writer import PartWriter
from pipeline.run.pool import Pool, processes_for
from pipeline.run.worker import Worker
from pipeline.timeline import Timeline, make_timeline
from pipeline.tokens.segments import token_shard_keys
from pipeline.tokens.tokenizer import cached_tokenizer, current_tokenizer_info


class RunSession:
    def __init__(self):
        self._lock_file = None
        self._workers: dict = {}            # repository settings -> its Worker
        self._pool: Pool | None = None
        self._pool_for: tuple = ()          # (stage, settings, size)
        # Per repository settings (see Settings.repository_settings), each value kept with
        # what it was made from (see _memo):
        self._listings: dict = {}           # -> (commit list, sha -> position)
        self._chunk_keys: dict = {}         # -> sha -> key
        self._token_keys: dict = {}         # -> sha -> key
        self._timelines: dict = {}          # the run's settings -> its Timeline
        # stage -> settings -> positions of the commits whose shards were not stored when
        # the stage's pool started (see _missing_after)
        self._unbuilt: dict = {"chunks": {}, "tokens": {}}
        self._tokenizer_thread: threading.Thread | None = None
        self._report_drawer = None          # see merge.report.start_drawer
        self._part_writer: PartWriter | None = None

    @staticmethod
    def _memo(memo: dict, settings: Settings, source, make):
        """memo's value for settings, made again by make() when source (what it is made
        from: a commit list, a tokenizer) is not the one it was made from."""
        known = memo.get(settings)
        if known is None or (known[0] is not source and known[0] != source):
            known = memo[settings] = (source, make())
        return known[1]

    def lock(self, root: Path) -> None:
        """One build at a time per cache: a second `doit` on the same cache stops with a
        message instead of racing the first."""
        if self._lock_file is not None:
            return
        Path(root).mkdir(parents=True, exist_ok=True)
        handle = open(Path(root) / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise PipelineError(
                f"another doit is building with cache {root} ({holder}). Wait for it to "
                "finish and run `doit` again, or give this run its own cache_dir=.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_file = handle

    def worker(self, settings: Settings) -> Worker:
        """This process's Worker of one repository's settings."""
        if settings not in self._workers:
            self._workers[settings] = Worker(settings, lambda: self.commit_list(settings))
        return self._workers[settings]

    def commit_list(self, settings: Settings) -> dict:
        """One repository's commit list of the current run, read once per list."""
        return self._listing(settings)[0]

    def _listing(self, settings: Settings, listed: dict | None = None) -> tuple:
        """(commit list, sha -> position) of one repository; listed: the list the pointer
        names, if at hand (see listed)."""
        pointer = current_pointer(settings)

        def read():
            listing = listed if listed is not None else read_commit_list(pointer)
            return listing, {commit["sha"]: position
                             for position, commit in enumerate(listing["commits"])}
        return self._memo(self._listings, settings, pointer, read)

    def listed(self, settings: Settings, listing: dict) -> None:
        """The commit list the commits task has just built or read (build_commit_list): the
        run takes it from there instead of reading it again (on a 20,000-commit history, a
        tenth of a no-op `doit`)."""
        self._listing(settings, listing)

    def timeline(self, settings: Settings) -> Timeline:
        """The run's commits of every repository in temporal order, made once per lists."""
        repositories = settings.repository_settings()
        return self._memo(self._timelines, settings,
                          [current_pointer(each) for each in repositories],
                          lambda: make_timeline([self.commit_list(each)
                                                 for each in repositories]))

    def chunk_keys(self, settings: Settings) -> dict:
        """sha -> chunk shard key of one repository's commits in order, computed once per
        commit list: the chunks and tokens tasks, the merge key and the merge all need them."""
        return self._memo(self._chunk_keys, settings, current_pointer(settings)["list"],
                          lambda: shard_keys(settings, [commit["sha"] for commit in
                                                        self.commit_list(settings)["commits"]]))

    def token_keys(self, settings: Settings) -> dict:
        """sha -> token shard key of one repository's commits in order, computed once per
        commit list and tokenizer."""
        tokenizer_hash = current_tokenizer_info(settings)["hash"]
        return self._memo(self._token_keys, settings,
                          (current_pointer(settings)["list"], tokenizer_hash),
                          lambda: token_shard_keys(settings, self.chunk_keys(settings),
                                                   tokenizer_hash))

    def _keys(self, stage: str, settings: Settings) -> dict:
        """sha -> the stage's shard key (each call reads the commit-list pointer: once per
        loop, not per commit)."""
        return self.chunk_keys(settings) if stage == "chunks" else self.token_keys(settings)

    def processes(self, stage: str, settings: Settings, count: int) -> int:
        """How many processes build count commits of the stage: its pool's, when it is up
        (it may be building them already), else see pool.processes_for."""
        if self._pool_for[:2] == (stage, settings):
            return self._pool_for[2]
        return processes_for(settings, count)

    def build(self, stage: str, settings: Settings, shas: list):
        """Write the stage's shards of shas, on every core (or Ray) when there are many (or
        when the stage's pool is up: it may be building them already); yields each sha once
        its shard is written. A few commits never pay for starting a pool or Ray."""
        size = self.processes(stage, settings, len(shas))
        if size == 1 or not shas:
            yield from self.worker(settings).build_block(stage, shas)
            return
        self._use_pool(stage, settings, size)
        after = self._missing_after(stage, settings, shas[-1], self._pool.lookahead(stage))
        yield from self._pool.build(stage, shas, after, self._stored(stage, settings))

    def _use_pool(self, stage: str, settings: Settings, size: int) -> None:
        """A pool of size processes for the stage of one repository's commits: the one that
        is up, its workers going on from their last stage, or a new one."""
        if self._pool_for[1:] == (settings, size) and self._pool_for[0] != stage:
            self._pool.finish_stage()       # its workers go on with this stage
            self._pool_for = (stage, settings, size)
        elif self._pool_for != (stage, settings, size):
            self.stop_pool()
            pool = ray_pool.RayPool if settings.executor == "ray" else Pool
            self._pool, self._pool_for = pool(settings, size), (stage, settings, size)
            events.pool_started(stage)

    @staticmethod
    def _pool_writes_parts(settings: Settings) -> bool:
        return len(settings.repository_settings()) == 1 and settings.executor != "ray"

    def start_merge(self, settings: Settings) -> None:
        """The merge begins: it needs the memory of this process's Workers (their symbol
        indexes), and of the pool and Ray unless the pool is to write its parts (write_parts).
        """
        self.close_workers()
        if not self._pool_writes_parts(settings):
            self.stop_pool()
            ray_pool.disconnect()

    def write_parts(self, settings: Settings, jobs: list, missing_rows: int) -> dict:
        """The merge's parts of jobs ((name, its commits) each: see Worker.write_part),
        written by the pool's workers when the rows they lack (missing_rows) or the parts
        are many (a first merge; every part again, as after commits_per_part changed):
        those of the tokens stage if they are up. Then the pool is stopped, and Ray left:
        the merge needs their memory. Returns part name -> (key, record) of those written:
        none for a few (a pull's), several repositories, or Ray, where the merge writes the
        parts itself."""
        written = {}
        repositories = settings.repository_settings()
        if self._pool_writes_parts(settings) and jobs:
            size = self.processes("rows", repositories[0], max(missing_rows, len(jobs)))
            if size > 1:
                self._use_pool("rows", repositories[0], size)
                events.processes_used("merge", size)
                written = self._pool.write_parts(settings.dataset, jobs)
        self.stop_pool()
        ray_pool.disconnect()
        return written

    def _built_ahead(self, stage: str, settings: Settings) -> dict:
        """sha -> block of the commits the stage's pool started ahead of their tasks."""
        return self._pool.ahead if self._pool_for[:2] == (stage, settings) else {}

    def none_built_ahead(self, stage: str, settings: Settings, shas: list) -> bool:
        """A task whose shards exist is up to date unless this run's pool built some of them
        ahead of it (its workers store them): the task then runs, takes them and counts
        them as built."""
        ahead = self._built_ahead(stage, settings)
        return not any(sha in ahead for sha in shas)

    def missing(self, stage: str, settings: Settings, shas: list) -> list:
        """Those of shas whose shards of stage this run builds: not stored, or built ahead
        of their task by the stage's pool."""
        ahead, stored = self._built_ahead(stage, settings), self._stored(stage, settings)
        return [sha for sha in shas if sha in ahead or not stored(sha)]

    def _stored(self, stage: str, settings: Settings):
        """sha -> whether its shard of stage is in the cache."""
        keys = self._keys(stage, settings)
        return lambda sha: os.path.exists(store.record_file(settings.cache, stage, keys[sha]))

    def _missing_after(self, stage: str, settings: Settings, last: str, count: int) -> list:
        """Up to count commits after last, in the run's order, whose shards of stage were not
        stored when the stage's pool started: the next tasks', which the pool starts on
        ahead (it skips those it has under way). The cache is looked at once per stage:
        only this run's pool stores these shards meanwhile."""
        listing, positions = self._listing(settings)
        keys, stored = self._keys(stage, settings), self._stored(stage, settings)
        unbuilt = self._memo(self._unbuilt[stage], settings, keys,
                             lambda: [position for position, sha in enumerate(keys)
                                      if not stored(sha)])
        start = bisect.bisect_right(unbuilt, positions[last])
        return [listing["commits"][position]["sha"] for position in unbuilt[start:start + count]]

    def train_tokenizer_meanwhile(self, settings: Settings) -> None:
        """Train the run's tokenizer (once per run) in a thread of the doit process, which
        only waits while the chunks stage's workers build: the tokenizer task, which runs
        after that stage, then finds it in the cache instead of training while every other
        core waits. A given tokenizer=PATH is only read; the task does that."""
        if self._tokenizer_thread is None and not settings.tokenizer:
            repositories = settings.repository_settings()
            listings = [self.commit_list(each) for each in repositories]
            self._tokenizer_thread = threading.Thread(
                target=_train_tokenizer, daemon=True,   # a Ctrl-C does not wait for it
                args=(settings, repositories, listings, self.timeline(settings)))
            self._tokenizer_thread.start()

    def wait_for_tokenizer(self) -> None:
        if self._tokenizer_thread is not None:
            self._tokenizer_thread.join()

    def start_part_writer(self) -> PartWriter:
        if self._part_writer is None:
            self._part_writer = PartWriter()
        return self._part_writer

    def end_part_writer(self) -> None:
        """The merge is done: the writer ends by itself."""
        writer, self._part_writer = self._part_writer, None
        if writer is not None:
            writer.close()

    def start_report_drawer(self) -> None:
        if self._report_drawer is None:
            self._report_drawer = start_drawer()

    def take_report_drawer(self):
        drawer, self._report_drawer = self._report_drawer, None
        return drawer

    def stop_pool(self, now: bool = False) -> None:
        """Stop the workers: once idle (a new stage, the merge) or now (the end of the run)."""
        if self._pool is not None:
            if now:
                self._pool.terminate()
            else:
                self._pool.shutdown()
            self._pool, self._pool_for = None, ()

    def close_workers(self) -> None:
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    def close(self) -> None:
        """End the run: workers stopped, git processes ended, lock released. At a normal end
        the pool is already stopped; after Ctrl-C or a failure its workers may be mid-block,
        and no one waits for what they build."""
        try:
            self.stop_pool(now=True)
            ray_pool.disconnect()           # with executor=ray: Ray lives as long as the run
            self.close_workers()
            # The merge failed or was stopped: nothing more to write or draw.
            if self._part_writer is not None:
                self._part_writer.kill()
                self._part_writer = None
            drawer = self.take_report_drawer()
            if drawer is not None:
                drawer.kill()
                drawer.communicate()
        finally:
            self._listings, self._chunk_keys, self._token_keys = {}, {}, {}
            self._timelines = {}
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None


def _train_tokenizer(settings: Settings, repositories: list, listings: list,
                     timeline: Timeline) -> None:
    """Put the run's trained tokenizer in the cache, with a Worker (git reader) per
    repository of its own: the doit process's are the main thread's."""
    workers = [Worker(each, lambda listing=listing: listing)
               for each, listing in zip(repositories, listings)]
    try:
        for worker in workers:
            worker.listing()        # a partial clone's reader learns which blobs it lacks
        cached_tokenizer(settings, [(worker.settings, worker.repo, worker.reader)
                                    for worker in workers], timeline)
    except Exception:               # noqa: BLE001 - the tokenizer task trains it again and
        pass                        # reports what fails, where the user expects it
    finally:
        for worker in workers:
            worker.close()
