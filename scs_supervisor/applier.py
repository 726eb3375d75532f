"""Applying the database to a running supervisord, without ever blocking its main loop.

supervisord is one thread around a ``select`` loop.  A sync therefore runs in steps:

1. database read, render and file writes in a background thread (a slow or absent database
   never freezes supervisord); when the thread ends it writes a byte to a pipe that sits in
   supervisord's socket map, which wakes the loop at once;
2. back in the loop: reread the config (only the changed files when every change is live:
   :meth:`Applier.reread_live`), give groups whose only change is live (queues,
   autoscale bounds) their new config in place and hand their running workers' commands to
   the fast path (:mod:`.fastpath`, its own thread, which tells the event listener once they
   are sent and checked), ask removed and changed groups to stop;
3. each later pass of the loop: remove the groups that have stopped, and add new and changed
   groups, :data:`ADD_BATCH` per pass so that spawning many workers never stalls supervisord.

RPC methods hand supervisord a deferred callback that calls :meth:`Applier.poll` until their
job is done; TICK events poll too, so a sync whose caller went away still finishes.  Only one
sync applies at a time; later ones wait their turn.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kombu.utils.url import maybe_sanitize_url
from supervisor import events
from supervisor.datatypes import integer, process_or_group_name
from supervisor.medusa import asyncore_25 as asyncore
from supervisor.options import ProcessConfig, ProcessGroupConfig, UnhosedConfigParser
from supervisor.states import ProcessStates

from scs_supervisor import programs
from scs_supervisor.control import Controllers
from scs_supervisor.fastpath import FastPath, LiveChange, Report, live_change
from scs_supervisor.store import Store, SyncSnapshot, Unavailable
from scs_supervisor.syncplan import SyncPlan, is_live_change, live_diff, plan_sync

#: Groups added per pass of supervisord's loop (each is spawned in the pass after).
ADD_BATCH = 2
#: Seconds during which a sync that finds its revision applied reports what applied it.
RECENT = 2.0
#: The keys of a sync result that name changed groups.
CHANGE_KEYS = ('added', 'changed', 'removed', 'reconfigured')
#: A worker in these states gets a live change by the fast path; one that is not running
#: starts with its new command anyway.
LIVE_STATES = (ProcessStates.STARTING, ProcessStates.RUNNING)


def sync_answer(result: dict, revision: int | None, last_applied: tuple, now: float,
                window: float = RECENT) -> tuple[dict, tuple]:
    """What a sync answers, and the new ``last_applied`` (revision, result, when).

    The answer says what this sync applied; when it found nothing left to do because another
    sync applied the same revision less than ``window`` seconds before (the loop may apply a
    change between its writer's commit and the writer's own sync), it is what that one did,
    so the writer still learns what its change did.
    """
    if any(result.get(key) for key in CHANGE_KEYS):
        return result, (revision, result, now)
    applied, earlier, when = last_applied
    if revision is not None and applied == revision and now - when < window:
        return {**earlier, 'errors': result['errors']}, last_applied
    return result, last_applied


class Waker(asyncore.file_dispatcher):
    """A pipe in supervisord's socket map: a byte written from any thread wakes the loop.

    supervisord polls a deferred answer only once its ``delay`` has passed since the last poll,
    so a wake-up that comes sooner would be lost until the next event (up to a second).  The
    waker therefore keeps the loop turning for ``linger`` seconds after each wake-up: longer
    than our deferreds' delay (:data:`.rpcinterface.POLL_DELAY`), and short, since the loop
    spins meanwhile and takes the CPU from our threads.
    """

    def __init__(self, linger: float = 0.002, logger=None):
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        super().__init__(self._read_fd)
        self.linger = linger
        self.logger = logger
        self._until = 0.0
        self._calls: deque[Callable[[], Any]] = deque()

    def wake(self) -> None:
        self._until = time.monotonic() + self.linger
        self._kick()

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` in supervisord's main loop at its next turn (callable from any thread)."""
        self._calls.append(fn)
        self.wake()

    def _kick(self) -> None:
        try:
            os.write(self._write_fd, b'.')
        except BlockingIOError:
            pass  # the pipe is full: the loop is awake already

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        try:
            self.recv(4096)
        except OSError:
            pass
        while self._calls:
            fn = self._calls.popleft()
            try:
                fn()
            except Exception:  # an error here would close the waker (asyncore's handle_error)
                if self.logger is not None:
                    self.logger.error('scs: main-loop call failed:\n' + traceback.format_exc())
        if time.monotonic() < self._until:
            self._kick()

    def close(self) -> None:
        super().close()
        os.close(self._write_fd)


class Background:
    """Runs ``fn`` in a daemon thread and wakes supervisord when it is done."""

    def __init__(self, fn: Callable[[], Any], waker: Waker | None):
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self._fn, self._waker = fn, waker
        self._thread = threading.Thread(target=self._run, name='scs-background', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:  # handed to the main loop, which reports it
            self.error = exc
        finally:
            self.done = True
            if self._waker is not None:
                self._waker.wake()


def read_group(options, path: Path):
    """The ProcessGroupConfig of one ``[program:x]`` file, as supervisord's reread makes it."""
    parser = UnhosedConfigParser()
    parser.expansions = options.environ_expansions
    if not parser.read(str(path)):
        raise OSError(f'cannot read {path}')
    parser.expand_here(os.path.abspath(os.path.dirname(path)))
    sections = parser.sections()
    if len(sections) != 1 or not sections[0].startswith('program:'):
        raise ValueError(f'{path} does not hold exactly one [program:x] section')
    [section] = sections
    name = process_or_group_name(section.split(':', 1)[1])
    priority = integer(parser.saneget(section, 'priority', 999,
                                      expansions={'here': options.here}))
    processes = options.processes_from_section(parser, section, name, ProcessConfig)
    return ProcessGroupConfig(options, name, priority, processes)


class ApplyError(Exception):
    """A sync could not be applied; ``kind`` says why ('database', 'reread')."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Applier:
    """One per supervisord: renders nodes from the store and applies them, one sync at a time."""

    def __init__(self, supervisord, settings, store: Store | None = None):
        self.supervisord = supervisord
        self.settings = settings
        self.store = store or Store.from_settings(settings)
        self.render_options = programs.RenderOptions.from_settings(settings)
        self.logger = supervisord.options.logger
        self.waker: Waker | None = None
        self.jobs: deque[Job] = deque()
        self.render_errors: dict[str, str] = {}
        #: The revision last applied with changes, and what they were (see sync_answer).
        self.last_applied: tuple = (None, {}, 0.0)
        self.configs: dict[str, Any] = {}
        #: The last sync's read of the database (replaced whole, so threads may read it).
        self.snapshot: SyncSnapshot | None = None
        #: The remote-control clients of supervisord's threads (fast path, operations).
        self.controllers = Controllers(settings.control_timeout)
        self.fast_path = FastPath(self.controllers)
        #: Program files written or removed that supervisord has not read yet.
        self.unread: set[str] = set()

    @property
    def rendered_revision(self) -> int | None:
        return self.snapshot.revision if self.snapshot is not None else None

    def start_waker(self) -> None:
        """Put the wake-up pipe in supervisord's socket map (once the loop is about to run)."""
        if self.waker is None:
            self.waker = Waker(logger=self.logger)

    def close(self) -> None:
        self.fast_path.close()
        self.controllers.close()
        if self.waker is not None:
            self.waker.close()
            self.waker = None
        self.store.engine.dispose()

    # -- the parts of a sync --------------------------------------------------------------------

    def render_and_write(self) -> tuple[list[str], list[str]]:
        """Database -> program files.  Runs outside supervisord's loop.

        A node whose row no longer passes validation keeps the file it had: bad data in the
        database never stops a running worker.
        """
        self.snapshot = snapshot = self.store.sync_snapshot(self.settings.agent_id)
        specs = snapshot.specs
        files, errors = {}, {}
        existing = self.settings.programs_dir
        for spec in specs:
            filename = programs.program_filename(spec.name)
            try:
                files[filename] = programs.render_program(spec, self.render_options)
            except ValueError as exc:
                errors[spec.name] = str(exc)
                try:
                    files[filename] = (existing / filename).read_text('ascii')
                except FileNotFoundError:
                    pass
        self.render_errors = errors
        written, removed = programs.write_programs(existing, files)
        self.unread.update(written + removed)
        return written, removed

    def reread(self) -> SyncPlan:
        """Re-read supervisord's config and plan what to do with scs's groups (main loop)."""
        options = self.supervisord.options
        try:
            options.process_config(do_usage=False)
        except ValueError as exc:
            raise ApplyError('reread', str(exc)) from None
        for warning in options.parse_warnings:
            self.logger.warn(f'scs: {warning}')
        self.unread.clear()
        added, changed, removed = self.supervisord.diff_to_active()
        self.configs = {c.name: c for c in added + changed}
        live = [c.name for c in changed if self._takes_live(c)]
        return plan_sync([c.name for c in added], [c.name for c in changed],
                         [c.name for c in removed], live)

    def reread_live(self) -> SyncPlan | None:
        """The plan of a sync whose every change is live, from the changed files alone, or None
        (then a full :meth:`reread` decides).  Main loop.

        A full reread parses every section supervisord knows, about a millisecond each in its
        loop; a queue or autoscale change needs only the one file.  Each file is read with
        supervisord's own parser, so the config is the one a full reread would give.
        """
        if not self.unread:
            return None
        options = self.supervisord.options
        known = {config.name for config in options.process_group_configs}
        configs = {}
        for filename in sorted(self.unread):
            name = filename[:-len('.conf')]
            try:
                new = read_group(options, self.settings.programs_dir / filename)
            except (OSError, ValueError):
                return None  # removed, or not one program: the full reread reports it
            group = self.supervisord.process_groups.get(name)
            if new.name != name or name not in known or group is None:
                return None
            if new != group.config and not self._takes_live(new):
                return None
            configs[name] = new
        options.process_group_configs = [configs.get(config.name, config)
                                         for config in options.process_group_configs]
        self.unread.clear()
        live = [name for name, new in configs.items()
                if new != self.supervisord.process_groups[name].config]
        self.configs = {name: configs[name] for name in live}
        return plan_sync([], live, [], live)

    def _takes_live(self, new) -> bool:
        """Can the running group take ``new`` without a restart (only -Q or --autoscale)?"""
        group = self.supervisord.process_groups.get(new.name)
        if group is None or len(new.process_configs) != 1:
            return False
        [old], [candidate] = group.config.process_configs, new.process_configs
        if not is_live_change(old.command, candidate.command):
            return False
        same = copy.copy(candidate)
        same.command = old.command
        return same == old and new.priority == group.config.priority

    def reconfigure(self, name: str) -> LiveChange | None:
        """Give a running group its new config in place.

        Returns what the fast path should tell its worker, or None when there is nothing to
        tell (the worker is not running: it starts with the new command) or no way to tell it
        now (the loop last saw its broker down); the supervisor loop repairs either way.
        """
        group, new = self.supervisord.process_groups[name], self.configs[name]
        [old] = group.config.process_configs
        new.after_setuid()
        group.config = new
        [config] = new.process_configs
        for process in group.processes.values():
            process.config = config
        self.logger.info(f'scs: reconfigured group {name} in place')
        node = self.snapshot.desired.get(name[len(programs.GROUP_PREFIX):])
        running = any(p.get_state() in LIVE_STATES for p in group.processes.values())
        if node is None or not running:
            return None
        if maybe_sanitize_url(node.broker_url) in self.snapshot.brokers_down:
            self.logger.info(f'scs: {name}: broker down, live change left to the loop')
            return None
        return live_change(node, live_diff(old.command, config.command)) or None

    def connect_fast_path(self) -> None:
        """Have the fast path connect to the brokers in use that the loop last saw up."""
        snapshot = self.snapshot
        self.fast_path.connect(
            node.broker_url for node in snapshot.desired.values()
            if maybe_sanitize_url(node.broker_url) not in snapshot.brokers_down)

    def announce(self, groups: tuple[str, ...], changes: list[LiveChange]) -> None:
        """Send ``changes`` by the fast path, then tell the supervisor loop (main loop).

        The event names the revision applied, so the loop does not sync again.  It wakes the
        loop to observe the workers and repair, unless the fast path saw every worker consume
        exactly its queues (``fastpath:verified``): then the loop checks at its next tick, and
        the caller who waits for the workers is not slowed by its broadcasts.
        """
        message = f'revision:{self.rendered_revision} reconfigured:{",".join(groups)}'
        if not changes or self.waker is None:
            events.notify(events.RemoteCommunicationEvent('scs', message))
            return
        waker = self.waker

        def done(report: Report, verified: bool) -> None:  # in the fast-path thread
            final = message + (' fastpath:verified' if verified else '')
            waker.call_soon(lambda: self._fast_path_done(report, final))

        self.fast_path.submit(changes, done)

    def _fast_path_done(self, report: Report, message: str) -> None:
        for level, line in report:
            getattr(self.logger, level)(line)
        events.notify(events.RemoteCommunicationEvent('scs', message))

    # -- jobs -------------------------------------------------------------------------------------

    def submit(self) -> Job:
        """Queue a sync.  Callers drive it with :meth:`poll` until ``job.done``."""
        job = Job(self)
        self.jobs.append(job)
        return job

    def poll(self) -> None:
        """Advance the queued syncs as far as they go without waiting (main loop only).

        Every waiting caller and every TICK event polls, so a sync whose caller went away still
        finishes.
        """
        while self.jobs:
            job = self.jobs[0]
            job.advance()
            if not job.done:
                return
            self.jobs.popleft()

    def sync_now(self) -> Job:
        """Apply synchronously: only for start-up, before supervisord runs any process."""
        job = self.submit()
        job.inline = True
        while not job.done:
            self.poll()
        return job


class Job:
    """One sync, advanced by :meth:`Applier.poll` from supervisord's loop."""

    def __init__(self, applier: Applier):
        self.applier = applier
        self.inline = False
        self.background: Background | None = None
        self.plan: SyncPlan | None = None
        self.stopping: dict[str, Any] = {}
        self.adding: deque[Any] = deque()
        self.done = False
        self.result: dict | None = None
        self.error: ApplyError | None = None

    def advance(self) -> None:
        """One step; sets ``done`` with ``result`` or ``error`` when the sync is over."""
        try:
            self.result = self._step()
        except ApplyError as exc:
            self.error = exc
        except Exception as exc:  # our bug: log it, never let it reach supervisord's loop
            self.applier.logger.error('scs: sync failed:\n' + traceback.format_exc())
            self.error = ApplyError('internal', f'{type(exc).__name__}: {exc}')
        self.done = self.result is not None or self.error is not None

    def _step(self) -> dict | None:
        applier = self.applier
        if self.plan is None:
            if self.inline:
                self._render_inline()
            else:
                if self.background is None:
                    self.background = Background(applier.render_and_write, applier.waker)
                if not self.background.done:
                    return None
                if self.background.error is not None:
                    self._raise_render_error(self.background.error)
                applier.connect_fast_path()
            self.plan = (None if self.inline else applier.reread_live()) or applier.reread()
            self._begin()
        self._collect_stopped()
        self._add_some()
        if self.stopping or self.adding:
            return None
        result = self.plan.as_result()
        result['errors'] = dict(applier.render_errors)
        answer, applier.last_applied = sync_answer(result, applier.rendered_revision,
                                                   applier.last_applied, time.monotonic())
        return answer

    def _render_inline(self) -> None:
        try:
            self.applier.render_and_write()
        except BaseException as exc:
            self._raise_render_error(exc)

    def _raise_render_error(self, exc: BaseException):
        if isinstance(exc, Unavailable):
            raise ApplyError('database', str(exc))
        self.applier.logger.error('scs: rendering failed:\n' + ''.join(
            traceback.format_exception(exc)))
        raise ApplyError('render', f'{type(exc).__name__}: {exc}')

    def _begin(self) -> None:
        supervisord, applier, plan = self.applier.supervisord, self.applier, self.plan
        self.adding.extend(applier.configs[name] for name in plan.add)
        changes = [change for change in map(applier.reconfigure, plan.live) if change]
        if plan.live:
            applier.announce(plan.live, changes)
        for name in plan.remove + plan.change:
            group = supervisord.process_groups.get(name)
            if group is None:
                continue
            group.stop_all()
            self.stopping[name] = applier.configs.get(name)

    def _collect_stopped(self) -> None:
        supervisord, logger = self.applier.supervisord, self.applier.logger
        for name, new_config in list(self.stopping.items()):
            group = supervisord.process_groups.get(name)
            if group is not None:
                if group.get_unstopped_processes():
                    group.stop_all()  # a process that was STARTING may be RUNNING now
                    continue
                supervisord.remove_process_group(name)
            del self.stopping[name]
            if new_config is None:
                logger.info(f'scs: removed group {name}')
            else:
                self.adding.append(new_config)

    def _add_some(self) -> None:
        """Add at most :data:`ADD_BATCH` groups in this pass of the loop.

        supervisord spawns every new group's process in the pass that follows; forking dozens
        of workers in one pass would keep it from answering anyone for seconds.
        """
        applier = self.applier
        for _ in range(min(ADD_BATCH, len(self.adding))):
            config = self.adding.popleft()
            applier.supervisord.add_process_group(config)
            applier.logger.info(f'scs: applied group {config.name}')
        if self.adding and applier.waker is not None:
            applier.waker.wake()
