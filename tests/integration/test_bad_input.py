"""Bad input through supervisorctl: one clear line, a non-zero exit, nothing changed.

supervisorctl joins its arguments with spaces before the plugin sees them, so a value with
spaces or quotes must be quoted once more for it (``scs create "'a b'"``).  The corpus below
is quoted that way, so each exact value reaches validation; RAW shows what happens without.
"""

import shlex

import pytest

from scs_supervisor.settings import Settings
from scs_supervisor.store import OBSERVED_DEFAULTS, Store

BAD = [
    (['create', 'a\nb'], 'name: must match'),
    (['create', '[program:x]'], 'name: must match'),
    (['create', 'x%(here)s'], 'name: must match'),
    (['create', 'nоde'], 'name: must match'),  # Cyrillic o
    (['create', 'x' * 10_000], 'name: must match'),
    (['create', 'ok1', '--queues', 'a b'], 'queues: must be printable ASCII without whitespace'),
    (['create', 'ok1', '--queues', 'a,b%c'], 'queues: must not contain %'),
    (['create', 'ok1', '--queues', 'a;#'], 'queues: must not contain # ;'),
    (['create', 'ok1', '--queues', "a'b"], "queues: must not contain '"),
    (['create', 'ok1', '--min', '5', '--max', '2'], 'min_concurrency: must not exceed'),
    (['create', 'ok1', '--max', '1000'], 'max_concurrency: must be at most 64'),
    (['create', 'ok1', '--pool', 'forks'], 'pool: must be one of'),
    (['create', 'ok1', '--loglevel', 'loud'], 'loglevel: must be one of'),
    (['create', 'ok1', '--app', 'x;rm -rf /'], 'app: must be a dotted Python module path'),
    (['create', 'ok1', '--directory', 'rel/dir'], 'directory: must be an absolute path'),
    (['create', 'ok1', '--env', 'LD_PRELOAD=/tmp/x.so'], 'env.LD_PRELOAD: may not be set'),
    (['create', 'ok1', '--env', 'A=x\ncommand=evil'], 'env.A: must be printable ASCII'),
    (['create', 'ok1', '--env', 'A=x"y'], 'env.A: must not contain quotes'),
    (['create', 'ok1', '--env', 'novalue'], '--env takes KEY=VALUE'),
    (['create', 'ok1', '--broker', 'http://evil/'], 'broker: scheme must be one of'),
    (['create', 'ok1', '--broker', 'missing'], 'broker: no broker named missing'),
    (['create', 'ok1', '--bogus', '1'], 'unrecognized arguments: --bogus 1'),
    (['create', 'keep'], 'node keep already exists'),
    (['set', 'keep', '--max', '0'], 'min_concurrency: must not exceed max_concurrency'),
    (['set', 'keep'], 'set: give at least one option'),
    (['set', 'nosuch', '--max', '2'], 'no node named nosuch'),
    (['add-queue', 'keep', 'bad queue'], 'queue: must be printable ASCII'),
    (['remove-queue', 'keep', 'nope'], 'node keep does not consume queue nope'),
    (['disable', 'nosuch'], 'no node named nosuch'),
    (['delete', 'a b'], 'name: must match'),
    (['show', 'nosuch'], 'no node named nosuch'),
    (['restart', 'nosuch'], 'no node named nosuch'),
    (['queue-create', 'a b'], 'name: must be printable ASCII'),
    (['queue-create', 'q1', '--exchange-type', 'fan'], 'exchange_type: must be one of'),
    (['queue-create', 'q1', '--options', '[1]'], '--options takes a JSON object'),
    (['queue-create', 'q1', '--options', '{"arguments": 1}'], 'options: unknown option'),
    (['queue-create', 'a'], 'queue a already exists'),
    (['queue-set', 'a'], 'queue-set: give at least one option'),
    (['queue-delete', 'a'], 'queue a is consumed by keep; use force'),
    (['queue-delete', 'nosuch'], 'no queue named nosuch'),
    (['broker-create', 'b1', 'http://evil/'], 'url: scheme must be one of'),
    (['broker-create', 'b 1', 'redis://x'], 'name: must match'),
    (['broker-set', 'nosuch', '--url', 'redis://x'], 'no broker named nosuch'),
    (['broker-delete', 'nosuch'], 'no broker named nosuch'),
    (['frobnicate'], "invalid choice: 'frobnicate'"),
    ([], 'the following arguments are required: command'),
]

RAW = [
    ('create a b', 'unrecognized arguments: b'),
    ("create a'b", 'No closing quotation'),
]


@pytest.fixture(scope='module')
def agent(tmp_path_factory):
    from tests.integration.conftest import Agent

    agent = Agent(tmp_path_factory.mktemp('bad') / 'home', None).start()
    agent.scs('create', 'keep', '--queues', 'a,b', '--max', '2')
    agent.wait_running('keep')
    yield agent
    agent.stop()


def snapshot(agent):
    """Desired state and program files (the loop's observations change by themselves)."""
    settings = Settings.load(section={'home': str(agent.home)})
    store = Store.from_settings(settings)
    try:
        nodes = [{k: v for k, v in node.items() if k not in OBSERVED_DEFAULTS}
                 for node in store.list_nodes()]
        return (store.revision(), nodes, store.list_queues(), store.list_brokers(),
                agent.program_files())
    finally:
        store.engine.dispose()


@pytest.mark.parametrize('args,message', BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_changes_nothing(agent, args, message):
    check_refused(agent, [shlex.quote(arg) for arg in args], message)


@pytest.mark.parametrize('line,message', RAW)
def test_unquoted_input_changes_nothing(agent, line, message):
    check_refused(agent, line.split(' '), message)


def check_refused(agent, args, message):
    before = snapshot(agent)
    done = agent.ctl('scs', *args)
    assert done.returncode != 0
    assert done.stdout == ''
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('scs: '), done.stderr
    assert message in lines[0]
    assert snapshot(agent) == before
