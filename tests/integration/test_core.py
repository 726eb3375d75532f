"""The core flow a user goes through, against a real supervisord, workers and brokers."""

from __future__ import annotations

import pytest
from celery import Celery

from scs_supervisor import transport
from tests.integration.conftest import (
    BROKERS,
    HOST,
    active_queues,
    pid_alive,
    unique,
    wait_for,
)

HAND_WRITTEN = """\
[program:other]
command=sleep 100000
autostart=true
startsecs=0
"""


def run_flow(agent, tmp_path):
    """Create, send a task, change, disable, enable, delete, restart supervisord."""
    (agent.home / 'programs').mkdir(parents=True, exist_ok=True)
    (agent.home / 'programs' / 'other.conf').write_text(HAND_WRITTEN)
    agent.start()
    other_pid = agent.rpc().supervisor.getProcessInfo('other')['pid']
    broker = agent.effective_broker
    results = tmp_path / 'results'
    results.mkdir()
    qa, qb, qc = unique('qa'), unique('qb'), unique('qc')

    out = agent.scs('create', 'n1', '--queues', f'{qa},{qb}', '--app', 'scs_supervisor.example',
                    '--min', '1', '--max', '2', '--directory', str(tmp_path),
                    '--env', f'SCS_EXAMPLE_RESULT_BACKEND=file://{results}')
    assert out.strip() == 'created node n1; added: n1'
    agent.scs('create', 'n2', '--queues', qc, '--app', 'scs_supervisor.example', '--pool',
              'solo', '--max', '1')
    pids = agent.wait_running('n1', 'n2')

    # A separate client sees exactly the node's queues.
    assert wait_for(lambda: active_queues(broker, 'n1', tmp_path) == {qa, qb}, 60,
                    message='n1 consuming its two queues')
    assert wait_for(lambda: active_queues(broker, 'n2', tmp_path) == {qc}, 60,
                    message='n2 consuming its queue')

    # A task sent to one of the queues runs on that node.
    client = Celery('client', broker=broker, backend=f'file://{results}')
    try:
        result = client.send_task('scs_supervisor.example.whoami', queue=qb)
        assert result.get(timeout=60) == f'n1@{HOST}'
    finally:
        client.close()

    # Queues and autoscale bounds of a prefork node change live: no restart at all.
    assert agent.scs('set', 'n1', '--max', '3').strip() == 'updated node n1; reconfigured: n1'
    wait_for(lambda: (agent.node('n1')['autoscaler'] or {}).get('max') == 3, 30,
             message='n1 autoscaler max 3')
    assert agent.wait_running('n1', 'n2') == pids

    # Any other change restarts only that node.
    assert agent.scs('set', 'n1', '--loglevel', 'DEBUG').strip() == \
        'updated node n1; changed: n1'
    new = agent.wait_running('n1', 'n2')
    assert new['n1'] != pids['n1'] and not pid_alive(pids['n1'])
    assert new['n2'] == pids['n2']
    assert agent.scs('set', 'n2', '--max', '2').strip() == 'updated node n2; changed: n2'
    after = agent.wait_running('n1', 'n2')
    assert after['n1'] == new['n1'] and after['n2'] != new['n2']
    assert agent.node('n1')['loglevel'] == 'DEBUG'

    # Disable stops it and removes its section; enable brings it back.
    assert agent.scs('disable', 'n1').strip() == 'disabled node n1; removed: n1'
    assert not pid_alive(new['n1'])
    assert 'scs-n1.conf' not in agent.program_files()
    shown = agent.node('n1')
    assert (shown['enabled'], shown['state'], shown['pid']) == (False, 'DISABLED', 0)
    assert agent.scs('enable', 'n1').strip() == 'enabled node n1; added: n1'
    agent.wait_running('n1')
    assert wait_for(lambda: active_queues(broker, 'n1', tmp_path) == {qa, qb}, 60,
                    message='n1 consuming again after enable')

    # Delete removes process, file and row.
    n1_pid = agent.node('n1')['pid']
    assert agent.scs('delete', 'n1').strip() == 'deleted node n1; removed: n1'
    assert not pid_alive(n1_pid)
    assert 'scs-n1.conf' not in agent.program_files()
    gone = agent.ctl('scs', 'show', 'n1')
    assert gone.returncode != 0 and 'no node named n1' in gone.stderr

    # The hand-written program was never touched.
    assert agent.rpc().supervisor.getProcessInfo('other')['pid'] == other_pid

    # After a supervisord restart the nodes come back from the database, including a change
    # made while supervisord was down.
    agent.stop()
    from scs_supervisor.settings import Settings
    from scs_supervisor.store import Store

    settings = Settings.load(section={'home': str(agent.home),
                                      'database_url': agent.database_url or '',
                                      'broker_url': agent.broker_url or ''})
    store = Store.from_settings(settings)
    store.create_node(settings.agent_id, 'n3', {'queues': [qa], 'app': 'scs_supervisor.example',
                                                'pool': 'threads', 'max_concurrency': 2})
    store.engine.dispose()
    agent.start()
    agent.wait_running('n2', 'n3')
    assert wait_for(lambda: active_queues(broker, 'n3', tmp_path) == {qa}, 60,
                    message='n3 consuming after restart')
    names = [line.split()[0] for line in agent.scs('list').splitlines()[1:]]
    assert names == ['n2', 'n3']


@pytest.mark.parametrize('broker', list(BROKERS))
def test_core_flow(broker, make_agent, tmp_path):
    transport.register()
    run_flow(make_agent(BROKERS[broker]), tmp_path)


def test_core_flow_on_postgresql(make_agent, postgres_url, tmp_path):
    run_flow(make_agent(None, postgres_url), tmp_path)
