"""doit tasks: a Rust repository's git history -> dataset/{train,val,test}.pt.

    doit                      build from the configured repository (or the generated sample)
    doit repo=PATH ref=REF    build from another repository (any setting: name=value)
    doit repos=PATH,PATH      one dataset from several repositories
    doit clean                remove cache/ and dataset/
    doit list                 the tasks

The chunks and tokens tasks each cover a batch of consecutive commits; their targets are
the commits' content-addressed shards (commit sha + stage settings + code versions), so a
task is up to date exactly when its shards exist, and when it runs it builds only the
missing ones, on every core.
"""

import os
import sys
from pathlib import Path

from doit import create_after, doit_cmd
from doit.exceptions import InvalidCommand

from pipeline import store
from pipeline.config import load_settings
from pipeline.errors import PipelineError
from pipeline.git.sample_repo import SAMPLE_VERSION
from pipeline.run import actions, events, interrupts
from pipeline.run.housekeeping import recover_dep_file
from pipeline.run.progress import ProgressReporter
from pipeline.run.session import RunSession

DEP_FILE = ".doit.db"
DOIT_CONFIG = {
    "default_tasks": ["sample_repo", "commits", "chunks", "tokenizer", "tokens", "merge",
                      "report"],
    "dep_file": DEP_FILE,
    "backend": "sqlite3",
    "reporter": ProgressReporter,
}
# The lock, the local worker and the worker pool of the current run: taken by the commits
# task, closed by its teardown, which doit runs however the run ends.
SESSION = RunSession()
# Ctrl-C and SIGTERM stop the run with one line instead of a traceback.
interrupts.install()

# doit opens its state file right after importing this file; a damaged one would stop it
# with a traceback, so it is checked (and moved aside) first.
_recovered = recover_dep_file(Path(DEP_FILE))
if _recovered:
    sys.stderr.write(_recovered + "\n")


def settings():
    """Settings from pyproject.toml, pipeline.toml and `doit name=value`.

    The files are read from PIPELINE_CONFIG_DIR if set (tests use their own), else from here.
    """
    config_dir = os.environ.get("PIPELINE_CONFIG_DIR", Path(__file__).resolve().parent)
    try:
        return load_settings(dict(doit_cmd._CMDLINE_VARS or {}), root=config_dir)
    except PipelineError as error:
        raise InvalidCommand(str(error)) from None


def task_sample_repo():
    """Generate the sample Rust repository (only when no repo= is configured)."""
    config = settings()
    if config.repo or config.repos:
        return {"actions": None, "uptodate": [True]}
    events.note("This was the generated sample repository; build yours with "
                  "`doit repo=PATH` or set repo in pipeline.toml (README.md).")
    stamp = config.cache / f"sample_repo.v{SAMPLE_VERSION}.done"
    return {"actions": [(actions.make_sample_repository, [config, stamp])],
            "targets": [str(stamp)], "uptodate": [True]}


def task_commits():
    """List the commits reachable from ref, with parents, times, message and Rust changes."""
    config = settings()
    return {"actions": [(actions.list_commits, [SESSION, config])], "task_dep": ["sample_repo"],
            "teardown": [SESSION.close], "clean": [(actions.remove_outputs, [config])],
            "verbosity": 2}


@create_after(executed="commits")
def task_chunks():
    """Per commit (in batches of 64): the changed Rust items, old/new code and context."""
    config = settings()
    tasks = actions.stage_tasks(SESSION, config)
    events.expect("chunks", sum(len(batch) for _, _, batch in tasks))
    for each, name, batch in tasks:
        keys = SESSION.chunk_keys(each)
        yield {"name": name,
               "actions": [(actions.build_chunk_shards, [SESSION, config, each, batch])],
               "targets": [store.record_file(config.cache, "chunks", keys[sha])
                           for sha in batch],
               "uptodate": [(SESSION.none_built_ahead, ["chunks", each, batch])]}


@create_after(executed="commits")
def task_tokenizer():
    """Train the byte-level BPE on the pinned commit's Rust files, or load tokenizer=PATH."""
    config = settings()
    return {"actions": [(actions.build_tokenizer, [SESSION, config])], "verbosity": 2}


def task_gc():
    """Remove cache files the last build's history and settings do not use (after a rebase)."""
    return {"actions": [(actions.collect_garbage, [SESSION, settings()])],
            "teardown": [SESSION.close], "verbosity": 2}


def task_retrain_tokenizer():
    """Forget the tokenizer's pinned commit: the next `doit` trains anew and re-tokenizes."""
    return {"actions": [(actions.retrain_tokenizer, [settings()])], "verbosity": 2}


@create_after(executed="tokenizer")
def task_tokens():
    """Per commit (in batches of 64): StarCoder commit-format token ids and loss spans."""
    config = settings()
    tasks = actions.stage_tasks(SESSION, config)
    try:
        keys_of = {each: SESSION.token_keys(each) for each, _, _ in tasks}
    except PipelineError:                  # `doit list` before the first build
        tasks = []
    events.expect("tokens", sum(len(batch) for _, _, batch in tasks))
    for each, name, batch in tasks:
        keys = keys_of[each]
        # On the chunks task as a whole: a task of it is known only once doit has created
        # them, which `doit tokens` alone would not have done.
        yield {"name": name, "actions": [(actions.build_token_shards, [SESSION, each, batch])],
               "task_dep": ["chunks"],
               "uptodate": [(SESSION.none_built_ahead, ["tokens", each, batch])],
               "targets": [store.record_file(config.cache, "tokens", keys[sha])
                           for sha in batch]}


@create_after(executed="tokenizer")
def task_merge():
    """Merge token shards in temporal order into dataset/ splits, stats and manifest."""
    config = settings()
    return {"actions": [(actions.merge_dataset, [SESSION, config])], "task_dep": ["tokens"],
            "targets": [str(config.dataset / "manifest.json")],
            "uptodate": [lambda: actions.merge_is_current(SESSION, config)], "verbosity": 2}


@create_after(executed="tokenizer")
def task_report():
    """Plot dataset/report.png: tokens per row and rows per month, per split."""
    config = settings()
    return {"actions": [(actions.make_report, [SESSION, config])], "task_dep": ["merge"],
            "file_dep": [str(config.dataset / "manifest.json")],
            "targets": [str(config.dataset / "report.png")]}
