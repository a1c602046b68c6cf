"""Commit shas in, their shards built as Ray tasks (this machine or a cluster) out: `executor=ray`.

RayPool is a pool.BlockPool, as the local pool is: blocks of consecutive commits, those of
the next tasks built ahead while a worker would wait. Each block is one Ray task that
returns its records; the doit process stores those of a task when it runs (a block built
ahead waits in Ray's object store), so a task whose worker process dies (killed, out of
memory) is simply run again by Ray (max_retries): it wrote nothing.

A Ray worker process keeps its pipeline Worker (repository, `git cat-file` reader, symbol
index, recent parses, tokenizer) from one block to the next, in `_WORKERS`, so
consecutive blocks it takes move the symbol index a few commits at a time, as in one
process. It reads the repository and the cache (the commit list, the chunk shards for the
tokens stage, the tokenizer, the definitions records of the symbol index) at the paths
the doit process uses, relative ones from the doit process's working directory: on a
cluster those paths must be on storage every node mounts at the same place.

Ray is started (or, with `ray_address=`, joined) at the first pool of a `doit` run and
left when the run session closes, however the run ends: a local instance is shut down
with all its processes. `ray` is imported only then, so it stays an optional dependency.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path

import pipeline
from pipeline import store
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.run.pool import BlockPool
from pipeline.run.worker import Worker

# A block whose worker process died is run again this many times (each try starts over:
# a block's records only exist once returned) before the build stops with a message.
RETRIES = 3
# How long the doit process waits on Ray at a time: a Ctrl-C is handled between waits.
WAIT_SECONDS = 0.2
INSTALL = 'executor=ray needs Ray: install it with `pip install -e ".[ray]"` (or use executor=local).'
# In a Ray worker process: settings -> the process's Worker for them.
_WORKERS: dict = {}
# In the doit process: the Ray module once connected, and the remote build_block.
_connection: dict = {"ray": None, "remote": None}


def build_block(settings: Settings, cwd: str, stage: str, shas: list) -> list:
    """Runs in a Ray worker process: (sha, path, record) of each sha's shard of stage, for
    the doit process to store. Its task's name, `ray::build_block`, is what `ps` shows."""
    # The doit process's relative paths (cache_dir=cache, repo=../x) mean the same here.
    if os.getcwd() != cwd:
        os.chdir(cwd)
    worker = _WORKERS.get(settings)
    if worker is None:
        # Blocks come one repository and stage at a time (repos= has a Settings per
        # repository): a Worker for other settings is done, close its git process.
        for stale in _WORKERS.values():
            stale.close()
        _WORKERS.clear()
        # One task per CPU already: the tokenizer's own threads would only contend (and
        # spin). Its output is the same either way.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        worker = _WORKERS[settings] = Worker(settings, pooled=True)
    return worker.build_block_unstored(stage, shas)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise PipelineError(INSTALL) from None
    return ray


@contextlib.contextmanager
def _local_environment():
    """The environment a local Ray instance's processes start with (they inherit it): its
    workers import this `pipeline` (the one the doit process runs, whatever else is
    installed), and no usage statistics are sent unless the user asked for them."""
    root = str(Path(pipeline.__file__).resolve().parent.parent)
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, saved["PYTHONPATH"]]))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C and SIGTERM wait while Ray starts, then arrive: one in the middle of ray.init
    would leave some of its processes running, unknown to ray.shutdown. Caught, not
    blocked (as pool.py does), so Ray's processes start with neither blocked nor caught
    (exec resets a caught signal) and end when ray.shutdown sends SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received[:1]:
            signal.raise_signal(signum)


def connect(settings: Settings, cpus: int):
    """Ray, started for this run on cpus CPUs, or joined at ray_address; once per run."""
    if _connection["ray"] is not None:
        return _connection["ray"]
    ray = _import_ray()
    # Set first: a Ctrl-C during start-up still has disconnect() end what was started.
    _connection["ray"] = ray
    # The workers' output goes to Ray's log files, not the user's terminal.
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if settings.ray_address:
        try:
            ray.init(address=settings.ray_address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            _connection["ray"] = None
            raise PipelineError(
                f"could not join the Ray cluster at ray_address={settings.ray_address}: "
                f"{str(error).strip().splitlines()[0]}. Check the address (`ray status` on "
                "the head node), or leave ray_address empty to start Ray on this "
                "machine.") from None
    else:
        with _local_environment(), _signals_deferred():
            ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
    _connection["remote"] = ray.remote(max_retries=RETRIES)(build_block)
    return ray


def disconnect() -> None:
    """Leave Ray at the end of the run: a local instance ends with all its processes; a
    cluster stays up, and Ray ends this run's tasks there."""
    ray, _connection["ray"], _connection["remote"] = _connection["ray"], None, None
    if ray is not None:
        ray.shutdown()


class RayPool(BlockPool):
    """Ray tasks for one stage of a run (Ray itself lives as long as the run)."""

    def __init__(self, settings: Settings, size: int):
        """size: CPUs of a local instance; a cluster has its own."""
        super().__init__()
        self.ray = connect(settings, size)
        self.size = max(int(self.ray.cluster_resources().get("CPU", size)), 1)
        self._settings = self.ray.put(settings)
        self._cwd = os.getcwd()

    def _submit(self, stage: str, block: list):
        return _connection["remote"].remote(self._settings, self._cwd, stage, block)

    def _finished(self, refs: set) -> set:
        return set(self.ray.wait(list(refs), num_returns=1, timeout=WAIT_SECONDS)[0])

    def _take(self, stage: str, ref, wanted: set) -> list:
        """Store the block's records of wanted (it may hold those of another task)."""
        taken = []
        for sha, path, record in self._result(ref):
            if sha in wanted:
                store.write_record(path, record)
                taken.append(sha)
        return taken

    def _result(self, ref) -> list:
        """A block's records, or the error a user can act on."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, ModuleNotFoundError) and "pipeline" in str(cause):
                raise PipelineError(
                    "the Ray workers cannot import the `pipeline` package: on a cluster, "
                    'install this project on every node (`pip install -e ".[ray]"` from the '
                    "same checkout).") from None
            if isinstance(cause, (PipelineError, OSError)):
                raise cause from None       # shown as the local pool shows it
            raise
        except exceptions.RayError as error:
            raise PipelineError(
                f"a Ray worker process of the build ended abruptly {RETRIES + 1} times on the "
                f"same commits (killed, or out of memory: {type(error).__name__}). Run `doit` "
                "again to resume; if it happens again, give fewer processes with `doit jobs=1` "
                "(or another number) or free some memory.") from None

    def shutdown(self) -> None:
        """The stage is over: wait for blocks built ahead for tasks that did not run (a
        block is not interrupted: its worker process keeps its Worker for the next stage),
        then drop them. Ray stays up for the rest of the run."""
        self.finish_stage()

    def terminate(self) -> None:
        """Stop now (Ctrl-C, a failed task): nobody waits for the blocks under way. On a
        cluster their tasks are ended; a local instance ends whole when the session leaves
        Ray right after."""
        for ref in self._running:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self._running.clear()
        self.ahead.clear()
