"""Settings in, one stage's cache entry or outputs written: the actions of the doit tasks.

Each function is one task's action. A PipelineError (a mistake the user can fix) becomes a
TaskFailed whose message the progress reporter prints as a paragraph, without a traceback.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

from doit.exceptions import TaskFailed

from pipeline import cache, housekeeping, progress
from pipeline.chunking import commit_chunks, shard_key
from pipeline.commits import build_commit_list, current_commit_list, git_session, repository_path
from pipeline.config import Settings
from pipeline.context import attach_context
from pipeline.dataset import is_current, merge, merge_key
from pipeline.errors import PipelineError
from pipeline.examples import build_segments, token_shard_key
from pipeline.git_history import first_parent_changes
from pipeline.report import write_report
from pipeline.sample_repo import generate_sample_repository
from pipeline.symbols import symbol_index
from pipeline.tokenizing import (current_tokenizer_info, forget_pin, load_tokenizer,
                                 prepare_tokenizer, special_ids)


def user_errors_fail_the_task(action):
    """Wrap a task action so a PipelineError, or a file that cannot be written (no space,
    no permission, a path through a file), fails the task with a message alone."""
    @functools.wraps(action)
    def run(*args, **kwargs):
        try:
            action(*args, **kwargs)
        except PipelineError as error:
            return TaskFailed(str(error))
        except OSError as error:
            where = f" {error.filename}" if error.filename else ""
            return TaskFailed(
                f"could not write or read{where}: {error.strerror or error}. Check that "
                "cache_dir and dataset_dir are writable directories with free space, then "
                "run `doit` again; nothing half-written is used.")
        return None
    return run


def chunk_shard_path(settings: Settings, sha: str) -> Path:
    return cache.record_path(settings.cache, "chunks", shard_key(settings, sha))


def token_shard_path(settings: Settings, sha: str, tokenizer_hash: str) -> Path:
    key = token_shard_key(settings, shard_key(settings, sha), tokenizer_hash)
    return cache.record_path(settings.cache, "tokens", key)


def ordered_shas(settings: Settings) -> list[str]:
    return [commit["sha"] for commit in current_commit_list(settings)["commits"]]


def current_merge_key(settings: Settings) -> str:
    tokenizer_hash = current_tokenizer_info(settings)["hash"]
    token_keys = [token_shard_path(settings, sha, tokenizer_hash).stem
                  for sha in ordered_shas(settings)]
    return merge_key(settings, token_keys, tokenizer_hash)


@user_errors_fail_the_task
def make_sample_repository(settings: Settings, stamp: Path) -> None:
    generate_sample_repository(Path(repository_path(settings)))
    cache.write_atomic(stamp, b"")


@user_errors_fail_the_task
def list_commits(settings: Settings) -> None:
    cache.acquire_run_lock(settings.cache)
    listing = build_commit_list(settings)
    if listing.get("shallow"):
        progress.warn(f"history starts at {', '.join(listing['shallow'])}: the repository is "
                      "shallow; `git fetch --unshallow` for full history.")


@user_errors_fail_the_task
def build_chunk_shard(settings: Settings, sha: str) -> None:
    write_chunk_shard(settings, sha)


def write_chunk_shard(settings: Settings, sha: str) -> dict:
    started = time.perf_counter()
    commit = current_commit_list(settings)["by_sha"][sha]
    repo, reader = git_session(settings)
    if len(commit.parents) > 1:
        changes = first_parent_changes(repo, commit) if settings.include_merges else None
    else:
        changes = commit.changes
    index = symbol_index(repo, reader, settings.cache, settings.max_file_bytes)
    shard = commit_chunks(settings, index.parses, reader, commit, changes)
    index.move_to(sha)
    attach_context(shard, index, {change.new_path for change in changes or ()}, settings)
    shard["seconds"] = {"chunks": time.perf_counter() - started}
    cache.write_record(chunk_shard_path(settings, sha), shard)
    progress.add_stage_time("chunks", shard["seconds"]["chunks"])
    return shard


def read_or_rebuild(path: Path, rebuild):
    """A shard from the cache; one that is damaged (or gone) is rebuilt here and reported,
    since its task, seeing its file in place, would not run again."""
    shard = cache.read_record(path)
    return shard if shard is not None else rebuild()


@user_errors_fail_the_task
def build_tokenizer(settings: Settings) -> None:
    prepare_tokenizer(settings)


@user_errors_fail_the_task
def retrain_tokenizer(settings: Settings) -> None:
    forget_pin(settings)


@user_errors_fail_the_task
def build_token_shard(settings: Settings, sha: str) -> None:
    write_token_shard(settings, sha)


def write_token_shard(settings: Settings, sha: str) -> dict:
    started = time.perf_counter()
    info = current_tokenizer_info(settings)
    tokenizer = load_tokenizer(info["path"])
    shard = read_or_rebuild(chunk_shard_path(settings, sha),
                            lambda: write_chunk_shard(settings, sha))
    repo_name = Path(repository_path(settings)).expanduser().resolve().name
    tokens = build_segments(settings, tokenizer, special_ids(tokenizer), shard, repo_name)
    tokens["seconds"] = {**shard["seconds"], "tokens": time.perf_counter() - started}
    cache.write_record(token_shard_path(settings, sha, info["hash"]), tokens)
    progress.add_stage_time("tokens", tokens["seconds"]["tokens"])
    return tokens


@user_errors_fail_the_task
def merge_dataset(settings: Settings) -> None:
    started = time.perf_counter()
    info = current_tokenizer_info(settings)
    listing = current_commit_list(settings)
    shards = [read_or_rebuild(token_shard_path(settings, sha, info["hash"]),
                              lambda sha=sha: write_token_shard(settings, sha))
              for sha in ordered_shas(settings)]
    tokenizer = load_tokenizer(info["path"])
    stats = merge(settings, listing, shards, info, special_ids(tokenizer),
                  current_merge_key(settings))
    progress.add_stage_time("merge", time.perf_counter() - started)
    progress.record_outcome(stats)


@user_errors_fail_the_task
def make_report(settings: Settings) -> None:
    write_report(settings.dataset, settings.dataset / "report.png")


@user_errors_fail_the_task
def collect_garbage(settings: Settings) -> None:
    info = current_tokenizer_info(settings)
    keep = housekeeping.referenced_records(settings, chunk_shard_path, token_shard_path, info)
    removed, freed = housekeeping.collect_garbage(settings, keep, info)
    print(f"removed {removed} unused cache files ({freed / 1e6:.1f} MB)")


def merge_is_current(settings: Settings) -> bool:
    return is_current(settings, current_merge_key(settings))


def remove_outputs(settings: Settings) -> None:
    """`doit clean`: the cache (sample repository included) and the dataset directory."""
    for directory in (settings.cache, settings.dataset):
        if directory.exists():
            shutil.rmtree(directory)
            print(f"removed {directory}/")
