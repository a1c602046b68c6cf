"""The run session and settings in, one stage's cache entries or outputs written: the
actions of the doit tasks.

Each function is one task's action. A PipelineError (a mistake the user can fix) becomes a
TaskFailed whose message the progress reporter prints as a paragraph, without a traceback.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

from doit.exceptions import TaskFailed

from pipeline import store
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.git.commit_list import build_commit_list
from pipeline.git.sample_repo import generate_sample_repository
from pipeline.merge.outputs import is_current, merge, merge_key, row_measures
from pipeline.merge.report import finish_drawing, write_report
from pipeline.run import events, housekeeping, interrupts
from pipeline.run.session import RunSession
from pipeline.tokens.tokenizer import current_tokenizer_info, forget_pin, prepare_tokenizer

BATCH = 64   # commits per chunks/tokens task: 20,000 per-commit tasks would cost doit seconds


def user_errors_fail_the_task(action):
    """Wrap a task action so a PipelineError, or a file that cannot be written (no space,
    no permission, a path through a file), fails the task with a message alone; an
    interrupt that the action's libraries lost or turned into another error stops the run."""
    @functools.wraps(action)
    def run(*args, **kwargs):
        try:
            action(*args, **kwargs)
        except PipelineError as error:
            interrupts.check()
            return TaskFailed(str(error))
        except OSError as error:
            interrupts.check()
            where = f" {error.filename}" if error.filename else ""
            return TaskFailed(
                f"could not write or read{where}: {error.strerror or error}. Check that "
                "cache_dir and dataset_dir are writable directories with free space, then "
                "run `doit` again; nothing half-written is used.")
        except Exception:
            interrupts.check()
            raise
        interrupts.check()
        return None
    return run


def batches(shas: list, prefix: str = "") -> list:
    """(name, shas) of consecutive commits, by position: new commits only extend the last.
    prefix tells apart the batches of the repositories of one run."""
    found = []
    for start in range(0, len(shas), BATCH):
        batch = shas[start:start + BATCH]
        found.append((f"{prefix}{start + 1}-{start + len(batch)}", batch))
    return found


def stage_tasks(session: RunSession, settings: Settings) -> list:
    """(repository settings, task name, shas) of a stage's tasks: each repository's commits
    in batches, named with its position in repos= and directory name when there are
    several, each commit in one task (one that an earlier repository also has, in a fork,
    is that one's). No tasks before the first commit list."""
    repositories = settings.repository_settings()
    try:
        timeline = session.timeline(settings)
    except PipelineError:                  # `doit list` or `doit clean` before a build
        return []
    tasks = []
    for index, each in enumerate(repositories):
        prefix = f"{index + 1}.{Path(each.repo).name}@" if len(repositories) > 1 else ""
        tasks += [(each, name, batch)
                  for name, batch in batches(timeline.shas_of(index), prefix)]
    return tasks


def timeline_token_keys(session: RunSession, settings: Settings, timeline) -> list:
    """The token shard key of each commit of the timeline, in its order."""
    keys = [session.token_keys(each) for each in settings.repository_settings()]
    return [keys[source][commit["sha"]]
            for commit, source in zip(timeline.commits, timeline.sources)]


def current_merge_key(session: RunSession, settings: Settings) -> str:
    tokenizer_hash = current_tokenizer_info(settings)["hash"]
    timeline = session.timeline(settings)
    names = timeline.names
    # One repository: its name; several: each commit's, as the order interleaves them.
    named = names[0] if len(names) == 1 else [names, timeline.sources]
    return merge_key(settings, timeline_token_keys(session, settings, timeline),
                     tokenizer_hash, named)


@user_errors_fail_the_task
def make_sample_repository(settings: Settings, stamp: Path) -> None:
    generate_sample_repository(Path(settings.repository))
    store.write_atomic(stamp, b"")


@user_errors_fail_the_task
def list_commits(session: RunSession, settings: Settings) -> None:
    session.lock(settings.cache)
    for each in settings.repository_settings():
        _list_repository_commits(session, each)
    session.timeline(settings)       # two repositories of one name stop the run here


def _list_repository_commits(session: RunSession, settings: Settings) -> None:
    listing = build_commit_list(settings, session.worker(settings).repo)
    session.listed(settings, listing)
    if listing.get("shallow"):
        events.warn(f"history starts at {', '.join(listing['shallow'])}: the repository is "
                    "shallow; `git fetch --unshallow` for full history.")
    if listing.get("missing"):
        why = listing.get("fetch_error") or "the remote did not send them"
        events.warn(f"the repository {settings.repository} is a partial clone that lacks "
                    f"{len(listing['missing'])} Rust or Cargo.toml file versions of its history, "
                    f"and fetching them failed ({why}). Files whose blobs are missing are "
                    "skipped and listed in stats.json (missing_objects). To include them, make "
                    "the clone's remote reachable, then run `doit clean` and `doit`.")


def _build_missing(session: RunSession, stage: str, settings: Settings, shas: list,
                   meanwhile=None) -> None:
    """Build the shards of shas not yet in the cache, using every core when there are many
    (and then calling meanwhile() first, if given)."""
    started = time.perf_counter()
    missing = session.missing(stage, settings, shas)
    events.commits_up_to_date(stage, len(shas) - len(missing))
    if missing:
        processes = session.processes(stage, settings, len(missing))
        events.processes_used(stage, processes)
        if processes > 1 and meanwhile is not None:
            meanwhile()
        elif processes == 1:
            # A few commits (a pull): the merge follows in a second, and its part writer
            # (a new process that imports numpy) starts meanwhile.
            session.start_part_writer()
    for sha in session.build(stage, settings, missing):
        events.commit_built(stage, sha)
    events.add_stage_time(stage, time.perf_counter() - started)


@user_errors_fail_the_task
def build_chunk_shards(session: RunSession, run_settings: Settings, settings: Settings,
                       shas: list) -> None:
    """One repository's (settings) chunk shards of shas. While the workers build many, the
    doit process trains the run's tokenizer."""
    _build_missing(session, "chunks", settings, shas,
                   lambda: session.train_tokenizer_meanwhile(run_settings))


@user_errors_fail_the_task
def build_tokenizer(session: RunSession, settings: Settings) -> None:
    session.wait_for_tokenizer()
    sources = []
    for each in settings.repository_settings():
        worker = session.worker(each)
        worker.listing()          # a partial clone's reader learns which blobs it lacks
        sources.append((each, worker.repo, worker.reader))
    prepare_tokenizer(settings, sources, session.timeline(settings))


@user_errors_fail_the_task
def retrain_tokenizer(settings: Settings) -> None:
    forget_pin(settings)


@user_errors_fail_the_task
def build_token_shards(session: RunSession, settings: Settings, shas: list) -> None:
    """One repository's token shards of shas, and their summaries for the merge (see
    Worker.build_block)."""
    _build_missing(session, "tokens", settings, shas)


@user_errors_fail_the_task
def merge_dataset(session: RunSession, settings: Settings) -> None:
    session.start_merge(settings)
    # The report's drawer imports matplotlib while the merge runs (the report task follows).
    session.start_report_drawer()
    started = time.perf_counter()
    repositories = settings.repository_settings()
    info, tokenizer, _ = session.worker(repositories[0]).tokenizer()
    timeline = session.timeline(settings)
    token_keys = timeline_token_keys(session, settings, timeline)

    def token_shard(position):
        # The commit's own repository's worker: a damaged shard is rebuilt from its commit.
        worker = session.worker(repositories[timeline.sources[position]])
        return worker.shard("tokens", timeline.commits[position]["sha"])

    def write_tensors(*part):
        return session.start_part_writer().write_tensors(*part)

    stats = merge(settings, timeline, token_keys, token_shard, info, tokenizer,
                  current_merge_key(session, settings), write_tensors,
                  functools.partial(session.write_parts, settings))
    session.end_part_writer()
    events.add_stage_time("merge", time.perf_counter() - started)
    events.record_outcome(stats)


@user_errors_fail_the_task
def make_report(session: RunSession, settings: Settings) -> None:
    """Draw the report, with the drawer the merge started if it did (`doit report` alone
    after a merge of an earlier run: here)."""
    measures, output = row_measures(settings), settings.dataset / "report.png"
    drawer = session.take_report_drawer()
    if drawer is None:
        write_report(measures, output)
    else:
        finish_drawing(drawer, measures, output)


@user_errors_fail_the_task
def collect_garbage(session: RunSession, settings: Settings) -> None:
    session.lock(settings.cache)            # a build's files must not vanish under it
    info = current_tokenizer_info(settings)
    keep = set().union(*(housekeeping.referenced_records(each, session.commit_list(each), info)
                         for each in settings.repository_settings()))
    removed, freed = housekeeping.collect_garbage(settings, keep, info)
    print(f"removed {removed} unused cache files ({freed / 1e6:.1f} MB)")


def merge_is_current(session: RunSession, settings: Settings) -> bool:
    return is_current(settings, current_merge_key(session, settings))


def remove_outputs(settings: Settings) -> None:
    """`doit clean`: the cache (sample repository included) and the dataset directory."""
    for directory in (settings.cache, settings.dataset):
        if directory.exists():
            shutil.rmtree(directory)
            print(f"removed {directory}/")
