"""Parts' rows in, their .pt files written by a process of their own out.

The parts a merge writes in the doit process (a pull's; a first merge's are written by
the pool's workers) have their tensors built and written here (pipeline.merge.pt_file,
without torch) while the doit process writes each part's .jsonl, which takes about as
long. This process is started as a pull's few commits are built (or at the first such
part): it imports numpy meanwhile, writes each part's .pt as its rows come, and ends once
told the merge is done.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.merge.parts import write_tensors
from pipeline.run import interrupts


class PartWriter:
    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs,), daemon=True,
                                        name="pipeline part writer")
        with interrupts.held():           # it starts with Ctrl-C blocked, then ignores it
            self._process.start()
        theirs.close()

    def write_tensors(self, settings: Settings, out: Path, name: str, rows: list,
                      pad_id: int):
        """Start parts.write_tensors in the writer process; returns a function that waits
        for the file's entry (its error is raised there). One part at a time."""
        self._connection.send((settings, out, name, rows, pad_id))
        return self._entry

    def _entry(self) -> dict:
        try:
            succeeded, value = self._connection.recv()
        except EOFError:
            raise PipelineError("the process writing the dataset's .pt files ended abruptly "
                                "(killed, or out of memory); run `doit` again.") from None
        if not succeeded:
            raise value
        return value

    def close(self) -> None:
        """The merge is done: the process ends by itself, without waiting on it."""
        try:
            self._connection.send(None)
        except OSError:
            pass                          # it has ended already
        self._connection.close()

    def kill(self) -> None:
        """The run stopped (Ctrl-C, a failed task): end it now. SIGTERM, so that a .pt it is
        writing is removed, not left half-written."""
        self._process.terminate()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()


def _serve(connection) -> None:
    interrupts.leave_to_parent()
    signal.signal(signal.SIGTERM, _stop)
    importlib.import_module("pipeline.merge.pt_file")    # numpy, before the first part
    try:
        while True:
            try:
                request = connection.recv()
            except EOFError:              # the doit process is gone
                break
            if request is None:
                break
            try:
                connection.send((True, write_tensors(*request)))
            except Exception as error:   # noqa: BLE001 - raised again in the doit process
                connection.send((False, error))
    except SystemExit:
        pass                              # stopped by kill(): a temporary file is removed
    finally:
        connection.close()
        os._exit(0)      # what it wrote is closed and renamed: skip Python's teardown


def _stop(signum, frame):
    raise SystemExit(1)
