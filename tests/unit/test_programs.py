import os
import shlex
import stat

import pytest
from supervisor.datatypes import RestartUnconditionally
from supervisor.options import ServerOptions, UnhosedConfigParser

from scs_supervisor import programs
from scs_supervisor.programs import ProgramSpec, RenderOptions
from scs_supervisor.validation import ValidationError


@pytest.fixture
def options(tmp_path):
    return RenderOptions(celery_bin='/opt/venv/bin/celery', logs_dir=str(tmp_path))


def spec(**kw):
    values = dict(name='w1', queues=('a', 'b.x:y'), min_concurrency=1, max_concurrency=3,
                  broker_url='redis://:p%40ss@127.0.0.1/0')
    values.update(kw)
    return ProgramSpec(**values)


def parse(text, name):
    """What supervisord itself makes of a rendered section."""
    server = ServerOptions()
    server.environ_expansions = {}
    parser = UnhosedConfigParser()
    parser.expansions = {'here': '/tmp'}
    parser.read_string(text)
    assert parser.sections() == [f'program:{name}']
    [config] = server.processes_from_section(parser, f'program:{name}', name)
    return config


def test_section_as_supervisord_reads_it(options):
    s = spec(env=(('A', 'x y, z=1'), ('B', '100%')), app='proj.celery:app',
             directory='/srv/proj')
    config = parse(programs.render_program(s, options), 'scs-w1')
    assert shlex.split(config.command) == [
        '/opt/venv/bin/celery', '-A', 'proj.celery:app', 'worker', '-n', 'w1@%h',
        '-Q', 'a,b.x:y', '-P', 'prefork', '-l', 'INFO', '--autoscale=3,1',
        '--without-mingle', '--without-gossip']
    assert config.environment == {'PYTHONUNBUFFERED': '1', 'A': 'x y, z=1', 'B': '100%',
                                  'CELERY_BROKER_URL': 'redis://:p%40ss@127.0.0.1/0'}
    assert config.directory == '/srv/proj'
    assert config.stopsignal == 15 and config.stopwaitsecs == 600
    assert (config.stopasgroup, config.killasgroup) == (False, True)
    assert config.autorestart is RestartUnconditionally
    assert config.stdout_logfile == f'{options.logs_dir}/scs-w1.log'


@pytest.mark.parametrize('value', [
    'a,b', 'k=v', '%(here)s', '%%', 'a b c', 'x;y', 'x#y', 'http://u:p@h/?a=1&b=2', '(){};',
    '[program:x]', '*', '~/x', 'a:b', '{"a": 1}'.replace('"', ''),
])
def test_env_values_come_back_unchanged(options, value):
    config = parse(programs.render_program(spec(env=(('V', value),)), options), 'scs-w1')
    assert config.environment['V'] == value


def test_broker_url_never_in_argv(options):
    text = programs.render_program(spec(), options)
    command = next(line for line in text.splitlines() if line.startswith('command='))
    assert 'p%%40ss' not in command and 'redis://' not in command


@pytest.mark.parametrize('pool,flag', [('threads', ['-c', '3']), ('solo', ['-c', '3']),
                                       ('gevent', ['--autoscale=3,1'])])
def test_pool_decides_concurrency_flags(options, pool, flag):
    argv = programs.worker_argv(spec(pool=pool), options)
    assert argv[argv.index('-P') + 1] == pool
    assert all(f in argv for f in flag)


def test_identical_input_gives_identical_bytes(options):
    assert programs.render_program(spec(), options) == programs.render_program(spec(), options)


@pytest.mark.parametrize('bad', [
    dict(name='a\n[program:evil]'), dict(queues=('a ;b',)), dict(queues=()),
    dict(env=(('LD_PRELOAD', '/x.so'),)), dict(env=(('A', 'x\ncommand=evil'),)),
    dict(app='x y'), dict(directory='/a b'), dict(broker_url='redis://h/0"\nx'),
    dict(min_concurrency=4, max_concurrency=2), dict(loglevel='info'),
])
def test_generator_revalidates_everything(options, bad):
    with pytest.raises(ValidationError):
        programs.render_program(spec(**bad), options)


def test_unsafe_agent_paths_are_refused(tmp_path):
    with pytest.raises(ValidationError, match='celery_bin'):
        programs.render_program(spec(), RenderOptions(celery_bin='/bin/a ;b',
                                                      logs_dir=str(tmp_path)))


def test_write_programs_is_exact_and_private(tmp_path, options):
    (tmp_path / 'other.conf').write_text('[program:other]\ncommand=sleep 1\n')
    (tmp_path / 'scs-gone.conf').write_text('old')
    files = programs.render_programs([spec(), spec(name='w2')], options)
    written, removed = programs.write_programs(tmp_path, files)
    assert written == ['scs-w1.conf', 'scs-w2.conf'] and removed == ['scs-gone.conf']
    assert sorted(os.listdir(tmp_path)) == ['other.conf', 'scs-w1.conf', 'scs-w2.conf']
    assert stat.S_IMODE((tmp_path / 'scs-w1.conf').stat().st_mode) == 0o600
    assert (tmp_path / 'scs-w1.conf').read_text() == files['scs-w1.conf']
    # Unchanged files are not rewritten.
    assert programs.write_programs(tmp_path, files) == ([], [])


def test_write_programs_refuses_foreign_names(tmp_path):
    with pytest.raises(ValueError, match='not an scs program file'):
        programs.write_programs(tmp_path, {'../evil.conf': ''})


def test_managed_groups():
    assert programs.is_managed_group('scs-w1')
    assert not programs.is_managed_group('scs_http')
    assert not programs.is_managed_group('other')
    assert not programs.is_managed_group('scs-')
