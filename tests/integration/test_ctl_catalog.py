"""supervisorctl scs: restart, queues and brokers from the shell, on a real supervisord."""

import json

from tests.integration.conftest import active_queues, pid_alive, wait_for


def test_restart_queues_and_brokers_from_the_shell(make_agent, tmp_path):
    agent = make_agent().start()
    agent.scs('create', 'w1', '--queues', 'a,b', '--app', 'scs_supervisor.example',
              '--pool', 'solo', '--wait')
    pid = agent.node('w1')['pid']

    out = agent.scs('restart', 'w1', '--wait')
    assert 'restarted node w1' in out and ': done' in out
    new_pid = agent.node('w1')['pid']
    assert new_pid != pid and pid_alive(new_pid) and not pid_alive(pid)

    agent.scs('queue-create', 'images', '--exchange', 'media', '--exchange-type', 'topic',
              '--routing-key', 'images.#', '--options', shell_json({'durable': True}))
    queues = {q['name']: q for q in json.loads(agent.scs('queues', '--json'))}
    assert queues['images'] == {'name': 'images', 'exchange': 'media', 'exchange_type': 'topic',
                                'routing_key': 'images.#', 'options': {'durable': True},
                                'nodes': []}
    assert queues['a']['nodes'] == ['w1']
    table = agent.scs('queues').splitlines()
    assert table[0].split() == ['NAME', 'EXCHANGE', 'TYPE', 'ROUTING', 'KEY', 'NODES']

    refused = agent.ctl('scs', 'queue-delete', 'a')
    assert refused.returncode != 0 and 'consumed by w1' in refused.stderr
    out = agent.scs('queue-delete', 'a', '--force')
    assert 'taken off w1' in out and agent.node('w1')['queues'] == ['b']
    wait_for(lambda: active_queues(agent.effective_broker, 'w1', tmp_path) == {'b'}, 60,
             message='queue a cancelled on the worker')

    # The URL comes from standard input, so the password never is in any process's argv.
    url = f'scsfs://user:s3cret@localhost/{agent.home}/broker'
    agent.ctl('scs', 'broker-create', 'local', '-', stdin=url + '\n').check_returncode()
    listed = agent.scs('brokers')
    assert 'local' in listed and 's3cret' not in listed and 'user:**@' in listed
    agent.scs('set', 'w1', '--broker', 'local', '--wait')
    assert json.loads(agent.scs('brokers', '--json'))[0]['nodes'] == ['w1']
    refused = agent.ctl('scs', 'broker-delete', 'local')
    assert refused.returncode != 0 and 'used by w1' in refused.stderr
    agent.scs('set', 'w1', '--broker', "''")
    agent.scs('broker-delete', 'local')
    assert json.loads(agent.scs('brokers', '--json')) == []


def shell_json(value) -> str:
    """JSON quoted once more for supervisorctl, which joins its arguments with spaces."""
    return "'" + json.dumps(value) + "'"
