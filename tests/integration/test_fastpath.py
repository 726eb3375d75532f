"""A live change reaches the running worker from the sync itself (the fast path), not the loop.

The loop's tick is an hour here: whatever happens within the test is the sync's doing.
"""

from __future__ import annotations

import os
import signal
import time

from scs_supervisor.settings import Settings
from scs_supervisor.store import Store
from tests.integration.conftest import BROKERS, active_queues, unique, wait_for

SLOW_LOOP = {'SCS_TICK_INTERVAL': '3600', 'SCS_CONTROL_TIMEOUT': '1'}


def open_store(agent):
    settings = Settings.load(section={'home': str(agent.home), 'broker_url': agent.broker_url})
    return Store.from_settings(settings)


def supervisord_log(agent) -> str:
    return (agent.home / 'logs' / 'supervisord.log').read_text()


def apply_and_wait(agent):
    """scs.sync, then an operation until the node consumes exactly its queues."""
    rpc = agent.rpc()
    result = rpc.scs.sync()
    op = rpc.scs.waitOperation(rpc.scs.startOperation(['n1'], 30))
    assert op['status'] == 'done', op
    return result


def test_queues_added_and_removed_live_by_the_sync_itself(make_agent, tmp_path):
    agent = make_agent(BROKERS['rabbitmq'], env=SLOW_LOOP).start()
    qa, qb = unique('qa'), unique('qb')  # a shared broker: names of this test's own
    agent.scs('create', 'n1', '--queues', qa, '--app', 'scs_supervisor.example', '--wait')
    pid = agent.node('n1')['pid']
    store = open_store(agent)
    try:
        store.add_queue('n1', qb)
        assert apply_and_wait(agent)['reconfigured'] == ['n1']
        assert active_queues(agent.broker_url, 'n1', tmp_path) == {qa, qb}

        store.remove_queue('n1', qa)
        assert apply_and_wait(agent)['reconfigured'] == ['n1']
        assert active_queues(agent.broker_url, 'n1', tmp_path) == {qb}
    finally:
        store.engine.dispose()
    assert agent.node('n1')['pid'] == pid  # no restart
    log = supervisord_log(agent)
    assert f'scs: fast path n1: add_consumer {qb}: add consumer {qb}' in log
    assert f'scs: fast path n1: cancel_consumer {qa}: no longer consuming from {qa}' in log
    # The loop never had to add or cancel anything.
    assert 'add_consumer n1' not in agent.listener_log()
    assert 'cancel_consumer n1' not in agent.listener_log()


def test_a_live_change_the_fast_path_cannot_deliver_never_fails_the_sync(make_agent,
                                                                          tmp_path):
    agent = make_agent(BROKERS['rabbitmq'], env=SLOW_LOOP).start()
    qa, qb, qc = unique('qa'), unique('qb'), unique('qc')
    agent.scs('create', 'n1', '--queues', qa, '--app', 'scs_supervisor.example', '--wait')
    store = open_store(agent)
    rpc = agent.rpc()
    try:
        # A worker that cannot answer: the commands time out after the sync has answered.
        pid = agent.node('n1')['pid']
        os.kill(pid, signal.SIGSTOP)
        try:
            store.add_queue('n1', qb)
            began = time.monotonic()
            assert rpc.scs.sync()['reconfigured'] == ['n1']
            assert time.monotonic() - began < 1  # did not wait for the worker
            wait_for(lambda: f'scs: fast path n1: add_consumer {qb} failed' in
                     supervisord_log(agent), 30, message='the fast path giving up')
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: active_queues(agent.broker_url, 'n1', tmp_path) == {qa, qb}, 60, 0.3,
                 message='n1 consuming the queue once it runs again')
        assert agent.node('n1')['pid'] == pid

        # A worker that is not running: nothing to send; it starts with its new queues.
        rpc.supervisor.stopProcess('scs-n1:scs-n1')
        store.add_queue('n1', qc)
        assert rpc.scs.sync()['reconfigured'] == ['n1']
        rpc.supervisor.startProcess('scs-n1:scs-n1')
        wait_for(lambda: active_queues(agent.broker_url, 'n1', tmp_path) == {qa, qb, qc}, 60,
                 0.3, message='n1 consuming all three queues after its start')
        assert f'fast path n1: add_consumer {qc}' not in supervisord_log(agent)
    finally:
        store.engine.dispose()
