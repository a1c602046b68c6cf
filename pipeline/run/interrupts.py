"""Ctrl-C and SIGTERM in, a clean stop out: one line saying how to resume, no traceback.

At the first signal one line is written, and an exception is raised in the doit process
wherever it is: KeyboardInterrupt for Ctrl-C (the process then ends by SIGINT, as a shell
expects), SystemExit(143) for SIGTERM. doit lets it through after running the teardowns,
where the run session kills its workers and their git processes and releases the lock;
the exception hook installed here keeps Python from printing a traceback.

Code that is not ours can lose the exception: one raised inside a `__del__` is dropped,
and a library can turn it into another error. So the signal is also
remembered, and `check` raises it again where the run passes often: after each task
action, before each task, after each commit built.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

MESSAGE = ("interrupted: the shards written so far are kept and nothing half-written is used; "
           "run `doit` again to resume where it stopped.")
_HELD = {signal.SIGINT, signal.SIGTERM}   # the signals held while child processes start
# The signals that stopped the current run, if any did.
_received: list = []
# The hooks that were there before: they still show every other exception.
_previous_hook = sys.__excepthook__
_previous_unraisable_hook = sys.__unraisablehook__


def install() -> None:
    """Stop the run cleanly on SIGINT and SIGTERM. A signal the shell had ignored (`nohup`,
    a background job) stays ignored."""
    global _previous_hook, _previous_unraisable_hook
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop)
    if sys.excepthook is not _report:
        _previous_hook, sys.excepthook = sys.excepthook, _report
        _previous_unraisable_hook, sys.unraisablehook = sys.unraisablehook, _unraisable


def _stop(signum, frame) -> None:
    if not _received:
        # os.write, not print: the code this signal interrupts may be inside a print.
        os.write(2, f"\n{MESSAGE}\n".encode())
    _received.append(signum)
    check()


def check() -> None:
    """Raise the stop again if a signal came and its exception was lost or turned into
    another error."""
    if _received:
        if _received[0] == signal.SIGTERM:
            raise SystemExit(128 + signal.SIGTERM)
        raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether a signal stopped this run (the reporter then prints no summary)."""
    return bool(_received)


def start_run() -> None:
    _received.clear()


def _unraisable(report) -> None:
    """An object the interrupt cut short in its constructor (GitPython's config parser, for
    one) can fail in __del__ when it is collected: after an interrupt that is noise."""
    if not _received:
        _previous_unraisable_hook(report)


def _report(kind, value, trace) -> None:
    if not issubclass(kind, KeyboardInterrupt):
        _previous_hook(kind, value, trace)
    elif not _received:                    # a Ctrl-C that came before the handler was set
        sys.stderr.write(f"\n{MESSAGE}\n")


@contextlib.contextmanager
def held():
    """Hold Ctrl-C and SIGTERM while child processes (workers, the part writer) start. The
    doit process is then never stopped halfway through starting one (the new process would
    print a traceback when its start-up data ends early). Each begins with Ctrl-C ignored:
    one while it imports its modules, before it ignores SIGINT itself (leave_to_parent),
    would print its traceback too (a Ctrl-C to the whole process group reaches it). The
    blocked mask does not reach it (multiprocessing's spawn starts it with none, measured
    on Python 3.11), but an ignored SIGINT survives exec and Python keeps it ignored.
    Held signals arrive when this ends: Linux keeps a blocked signal pending even while
    it is ignored."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    in_main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
    try:
        yield
    finally:
        if in_main_thread:      # (None: a handler not set from Python; the default then)
            signal.signal(signal.SIGINT, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def leave_to_parent() -> None:
    """In a child process started under held(): Ctrl-C is the doit process's to handle (it
    stops its children); it stays ignored, and the signals are unblocked should the mask
    have been inherited after all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
