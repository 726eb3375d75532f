"""--wait and --async: callers follow a change until the workers consume their queues."""

from tests.integration.conftest import active_queues


def test_wait_returns_once_the_node_consumes_exactly_its_queues(make_agent, tmp_path):
    agent = make_agent().start()
    out = agent.scs('create', 'n1', '--queues', 'a,b', '--app', 'scs_supervisor.example',
                    '--wait')
    assert out.splitlines()[0] == 'created node n1; added: n1'
    assert out.splitlines()[1].endswith(
        ': done: every node is running and consuming exactly its queues')
    # No polling here: --wait already saw it.
    assert active_queues(agent.effective_broker, 'n1', tmp_path) == {'a', 'b'}

    out = agent.scs('add-queue', 'n1', 'c', '--wait')
    assert 'reconfigured: n1' in out and ': done: ' in out
    assert active_queues(agent.effective_broker, 'n1', tmp_path) == {'a', 'b', 'c'}

    out = agent.scs('remove-queue', 'n1', 'a', '--wait')
    assert ': done: ' in out
    assert active_queues(agent.effective_broker, 'n1', tmp_path) == {'b', 'c'}


def test_async_returns_an_operation_to_ask_about_later(make_agent, tmp_path):
    agent = make_agent().start()
    out = agent.scs('create', 'n1', '--queues', 'a', '--app', 'scs_supervisor.example',
                    '--async')
    line = out.splitlines()[1]
    assert line.startswith('operation ') and line.split(': ')[1].startswith('pending')
    op_id = line.split()[1].rstrip(':')
    out = agent.scs('operation', op_id, '--wait')
    assert out.startswith(f'operation {op_id}: done')
    assert active_queues(agent.effective_broker, 'n1', tmp_path) == {'a'}
    missing = agent.ctl('scs', 'operation', 'nosuchid')
    assert missing.returncode != 0 and 'OPERATION_NOT_FOUND' in missing.stderr


def test_wait_reports_a_worker_that_cannot_start(make_agent):
    agent = make_agent().start()
    done = agent.ctl('scs', 'create', 'bad', '--app', 'no_such_module', '--queues', 'q',
                     '--wait', '--timeout', '60')
    assert done.returncode != 0
    # It dies before startsecs (FATAL after the retries) or, on a loaded machine, just after
    # (supervisord restarts it for ever): either way the wait says so well before the timeout.
    assert 'failed: bad is FATAL' in done.stdout or 'failed: bad keeps exiting' in done.stdout


def test_wait_times_out_with_what_it_saw(make_agent):
    agent = make_agent().start()
    # Nothing listens on port 1: the worker runs but never consumes.
    done = agent.ctl('scs', 'create', 'lost', '--app', 'scs_supervisor.example', '--queues',
                     'q', '--broker', 'redis://127.0.0.1:1/0', '--wait', '--timeout', '3')
    assert done.returncode != 0
    assert 'timeout: timed out after 3s waiting for lost' in done.stdout
