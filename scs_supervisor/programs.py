"""Node -> supervisord ``[program:scs-<name>]`` section (pure), plus the one atomic writer.

Every value is validated again here, every argument is shell-quoted (supervisord splits
``command`` with ``shlex``), every ``%`` is doubled (supervisord %-expands values) and every
environment value is double-quoted, so no stored string can add a key, a section or a comment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

from scs_supervisor import validation as v

GROUP_PREFIX = 'scs-'
FILE_RE = re.compile(r'scs-[A-Za-z0-9][A-Za-z0-9_-]{0,62}\.conf')
#: Plain paths we write into config values ourselves (settings, not user input).
CONFIG_PATH_RE = re.compile(r'/[A-Za-z0-9_./@+%=,:~-]*')


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
    """Everything the section of one node depends on, as plain data."""

    name: str
    queues: tuple[str, ...]
    min_concurrency: int
    max_concurrency: int
    pool: str = 'prefork'
    loglevel: str = 'INFO'
    app: str | None = None
    broker_url: str = ''
    directory: str | None = None
    env: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """Agent-wide values that go into every section (from :class:`~.settings.Settings`)."""

    celery_bin: str
    logs_dir: str
    concurrency_cap: int = 64
    stopwaitsecs: int = 600
    startsecs: int = 2

    @classmethod
    def from_settings(cls, settings) -> RenderOptions:
        return cls(celery_bin=str(settings.celery_bin), logs_dir=str(settings.logs_dir),
                   concurrency_cap=settings.concurrency_cap,
                   stopwaitsecs=settings.stopwaitsecs, startsecs=settings.startsecs)


def group_name(node_name: str) -> str:
    """The supervisord group (and program) name of a node."""
    return GROUP_PREFIX + node_name


def node_name(group: str) -> str:
    """The node a managed group (see :func:`is_managed_group`) runs."""
    return group[len(GROUP_PREFIX):]


def program_filename(node_name: str) -> str:
    return f'{group_name(node_name)}.conf'


def is_managed_group(name: str) -> bool:
    """True for groups scs owns; hand-written programs never match."""
    return name.startswith(GROUP_PREFIX) and FILE_RE.fullmatch(name + '.conf') is not None


def escape(value: str) -> str:
    """Double every ``%`` so supervisord's %-expansion gives the value back unchanged."""
    return value.replace('%', '%%')


def config_path(field: str, value: str) -> str:
    """A path we put in a config value: absolute and of plain characters."""
    if not CONFIG_PATH_RE.fullmatch(value):
        raise v.ValidationError(field, 'must be an absolute path of A-Z a-z 0-9 _ . / @ + - '
                                       '(no spaces or quotes)')
    return value


def worker_argv(spec: ProgramSpec, options: RenderOptions) -> list[str]:
    """The ``celery worker`` command line of a node (no broker URL: that goes in the env)."""
    argv = [options.celery_bin]
    if spec.app:
        argv += ['-A', spec.app]
    argv += ['worker', '-n', f'{spec.name}@%h', '-Q', ','.join(spec.queues),
             '-P', spec.pool, '-l', spec.loglevel]
    if spec.pool in v.AUTOSCALE_POOLS:
        argv.append(f'--autoscale={spec.max_concurrency},{spec.min_concurrency}')
    else:
        argv += ['-c', str(spec.max_concurrency)]
    # Mingle waits a second for replies on every start; gossip is for workers that watch each
    # other.  scs tracks its workers itself.
    argv += ['--without-mingle', '--without-gossip']
    return argv


def check_spec(spec: ProgramSpec, options: RenderOptions) -> None:
    """Validate every value of ``spec`` again: the generator trusts nothing it is given."""
    v.check_node_name(spec.name)
    if not spec.queues:
        raise v.ValidationError('queues', 'a node must consume at least one queue')
    v.check_queue_names(list(spec.queues))
    v.check_concurrency(spec.min_concurrency, spec.max_concurrency, options.concurrency_cap)
    v.check_pool(spec.pool)
    if v.check_loglevel(spec.loglevel) != spec.loglevel:
        raise v.ValidationError('loglevel', 'must be upper case')
    v.check_app(spec.app)
    v.check_broker_url(spec.broker_url)
    v.check_directory(spec.directory)
    v.check_env(dict(spec.env))
    config_path('celery_bin', options.celery_bin)
    config_path('logs_dir', options.logs_dir)


def render_program(spec: ProgramSpec, options: RenderOptions) -> str:
    """The text of ``scs-<name>.conf``: one ``[program:scs-<name>]`` section.

    Identical input gives identical bytes.
    """
    check_spec(spec, options)
    group = group_name(spec.name)
    command = ' '.join(shlex.quote(arg) for arg in worker_argv(spec, options))
    env = {'PYTHONUNBUFFERED': '1', **dict(spec.env), 'CELERY_BROKER_URL': spec.broker_url}
    environment = ','.join(f'{key}="{value}"' for key, value in env.items())
    log = f'{options.logs_dir}/{group}.log'
    lines = [
        f'; Generated by scs-supervisor from node {spec.name}. Do not edit: scs rewrites it.',
        f'[program:{group}]',
        f'command={command}',
    ]
    if spec.directory:
        lines.append(f'directory={spec.directory}')
    lines += [
        f'environment={environment}',
        'autostart=true',
        'autorestart=true',
        f'startsecs={options.startsecs}',
        'startretries=3',
        'stopsignal=TERM',
        f'stopwaitsecs={options.stopwaitsecs}',
        'stopasgroup=false',
        'killasgroup=true',
        'redirect_stderr=true',
        f'stdout_logfile={log}',
        'stdout_logfile_maxbytes=10MB',
        'stdout_logfile_backups=5',
    ]
    return escape('\n'.join(lines)) + '\n'


def render_programs(specs: Iterable[ProgramSpec], options: RenderOptions) -> dict[str, str]:
    """File name -> text for every given node."""
    return {program_filename(spec.name): render_program(spec, options) for spec in specs}


def write_programs(directory: Path, files: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Make ``directory`` hold exactly ``files`` among its ``scs-*.conf`` files.

    Each file is written to a dot-temp file (supervisord's include glob skips dot files), synced
    and renamed over the old one, so a reread never sees half a file.  Files that already hold
    the right bytes are left alone.  Returns the names written and the names removed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written, removed = [], []
    for filename, text in sorted(files.items()):
        if not FILE_RE.fullmatch(filename):
            raise ValueError(f'refusing to write {filename!r}: not an scs program file')
        path = directory / filename
        data = text.encode('ascii')
        try:
            if path.read_bytes() == data:
                continue
        except FileNotFoundError:
            pass
        tmp = directory / f'.{filename}.tmp'
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        written.append(filename)
    for path in sorted(directory.iterdir()):
        if FILE_RE.fullmatch(path.name) and path.name not in files:
            path.unlink()
            removed.append(path.name)
    if written or removed:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return written, removed
