"""The supervisor loop against real workers: kills, hangs, drift, outages, crash loops."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from kombu.utils.url import maybe_sanitize_url

from scs_supervisor.settings import Settings
from scs_supervisor.store import Store
from tests.integration.conftest import (
    HOST,
    active_queues,
    celery_client,
    celery_control,
    pid_alive,
    wait_for,
)
from tests.integration.test_database_outage import set_connections

FAST = {'SCS_TICK_INTERVAL': '1', 'SCS_MISSED_PINGS': '3', 'SCS_RESTART_WINDOW': '5'}
APPS = Path(__file__).with_name('apps')


def create(agent, name, *options):
    agent.scs('create', name, '--app', 'scs_supervisor.example', *options)
    return agent.wait_running(name)[name]


def consuming(agent, name, queues, cwd, timeout=60):
    wait_for(lambda: active_queues(agent.effective_broker, name, cwd) == set(queues), timeout,
             0.3, message=f'{name} consuming {sorted(queues)}')


def new_pid(agent, name, old, timeout=90):
    def check():
        node = agent.node(name)
        return node['state'] == 'RUNNING' and node['pid'] not in (0, old) and node['pid']
    return wait_for(check, timeout, 0.3, message=f'{name} running with a new pid')


def ticks(agent) -> int:
    return (agent.status().get('last_tick') or {}).get('count', 0)


def test_killed_and_hung_workers_are_restarted_and_consume_again(make_agent, tmp_path):
    agent = make_agent(env=FAST).start()
    pid = create(agent, 'n1', '--queues', 'a,b')
    consuming(agent, 'n1', {'a', 'b'}, tmp_path)

    os.kill(pid, signal.SIGKILL)
    pid = new_pid(agent, 'n1', pid)
    consuming(agent, 'n1', {'a', 'b'}, tmp_path)

    os.kill(pid, signal.SIGSTOP)
    try:
        restarted = new_pid(agent, 'n1', pid)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGCONT)
    consuming(agent, 'n1', {'a', 'b'}, tmp_path)
    assert 'kill n1: missed 3 pings' in agent.listener_log()
    assert not pid_alive(pid) and restarted != pid
    assert agent.node('n1')['restarts'] >= 2


def test_drift_behind_its_back_is_repaired(make_agent, tmp_path):
    agent = make_agent(env=FAST).start()
    create(agent, 'n1', '--queues', 'a,b', '--min', '1', '--max', '4')
    consuming(agent, 'n1', {'a', 'b'}, tmp_path)
    broker, nodename = agent.effective_broker, f'n1@{HOST}'

    before = ticks(agent)
    celery_control(broker, 'cancel_consumer', 'a', '-d', nodename, cwd=tmp_path)
    wait_for(lambda: 'add_consumer n1: missing' in agent.listener_log(), 30,
             message='the missing queue re-added')
    assert ticks(agent) - before <= 2
    consuming(agent, 'n1', {'a', 'b'}, tmp_path)

    celery_control(broker, 'add_consumer', 'intruder', '-d', nodename, cwd=tmp_path)
    wait_for(lambda: 'cancel_consumer n1: extra' in agent.listener_log(), 30,
             message='the extra queue cancelled')
    consuming(agent, 'n1', {'a', 'b'}, tmp_path)

    celery_control(broker, 'autoscale', '7', '3', '-d', nodename, cwd=tmp_path)
    wait_for(lambda: 'autoscale n1: max,min 7,3 -> 4,1' in agent.listener_log(), 30,
             message='autoscale restored')

    def autoscaler():
        done = celery_client(broker, '-A', 'scs_supervisor.example', 'inspect', 'stats', '-j',
                             '-d', nodename, cwd=tmp_path)
        import json
        stats = json.loads(done.stdout)[nodename]['autoscaler']
        return (stats['max'], stats['min']) == (4, 1)
    wait_for(autoscaler, 30, message='autoscaler back at 4,1')
    node = agent.node('n1')
    assert sorted(node['consuming']) == ['a', 'b'] and node['restarts'] == 0
    repairs = wait_for(lambda: (lambda r: r if r.get('autoscale') else None)(
        agent.rpc().scs.getStatus().get('repairs', {})), 30, message='repairs recorded')
    assert repairs['add_consumer'] >= 1 and repairs['cancel_consumer'] >= 1


def test_broker_outage_pauses_restarts_then_everything_consumes_again(
        make_agent, private_redis, tmp_path):
    url, start_broker, stop_broker = private_redis
    env = {**FAST, 'SCS_MISSED_PINGS': '2', 'SCS_WAIT_AFTER_BROKER_REVIVED': '15'}
    agent = make_agent(broker_url=url, env=env).start()
    pid = create(agent, 'n1', '--queues', 'a')
    consuming(agent, 'n1', {'a'}, tmp_path)
    masked = maybe_sanitize_url(url)

    def broker_state():
        return agent.status()['brokers'][masked]

    def unchanged_until(predicate, timeout):
        def check():
            assert agent.node('n1')['pid'] == pid, 'restarted during outage or grace'
            return predicate()
        wait_for(check, timeout, 0.5, message='outage phase')

    stop_broker()
    unchanged_until(lambda: broker_state()['up'] is False and broker_state()['paused'], 30)
    outage_ticks = ticks(agent)
    # Stay down for longer than the ping threshold (2 ticks), checking the pid all along.
    unchanged_until(lambda: ticks(agent) >= outage_ticks + 4, 60)
    start_broker()
    unchanged_until(lambda: broker_state()['up'] and broker_state()['revived_at'], 30)
    state = broker_state()
    assert state['paused']  # the grace period
    unchanged_until(lambda: not broker_state()['paused'], 60)
    consuming(agent, 'n1', {'a'}, tmp_path, timeout=90)
    node = agent.node('n1')
    assert node['pid'] == pid and node['restarts'] == 0


def test_crash_loop_stays_within_the_restart_limit(make_agent, tmp_path):
    env = {**FAST, 'SCS_RESTART_WINDOW': '60', 'SCS_RESTART_LIMIT': '1'}
    agent = make_agent(env=env).start()
    agent.scs('create', 'crash', '--app', 'crashy', '--directory', str(APPS), '--queues', 'c',
              '--pool', 'solo', '--max', '1', '--env', 'CRASH_AFTER=3')
    wait_for(lambda: 'restarted too often' in agent.node('crash')['failed'], 90,
             message='the crash loop reported')
    node = agent.node('crash')
    assert node['enabled'] is True  # never silently disabled
    wait_for(lambda: agent.node('crash')['state'] in ('STOPPED', 'EXITED', 'FATAL'), 30,
             message='held')
    log = (agent.home / 'logs' / 'supervisord.log').read_text()
    spawns = log.count("spawned: 'scs-crash'")
    # The first start, one restart within the window, and nothing after the hold.
    assert spawns <= 3, spawns
    held_ticks = ticks(agent)
    wait_for(lambda: ticks(agent) >= held_ticks + 5, 30, message='five more ticks')
    log = (agent.home / 'logs' / 'supervisord.log').read_text()
    assert log.count("spawned: 'scs-crash'") == spawns


def test_listener_killed_is_restarted_and_repairs_continue(make_agent, tmp_path):
    agent = make_agent(env=FAST).start()
    create(agent, 'n1', '--queues', 'a')
    consuming(agent, 'n1', {'a'}, tmp_path)
    rpc = agent.rpc()
    old = rpc.supervisor.getProcessInfo('scs_listener')['pid']
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (info := rpc.supervisor.getProcessInfo('scs_listener'))['statename']
             == 'RUNNING' and info['pid'] != old, 30, message='listener back')
    celery_control(agent.effective_broker, 'cancel_consumer', 'a', '-d', f'n1@{HOST}',
                   cwd=tmp_path)
    wait_for(lambda: 'add_consumer n1: missing' in agent.listener_log(), 30,
             message='repair by the new listener')
    consuming(agent, 'n1', {'a'}, tmp_path)


def test_database_outage_stops_nothing_and_the_loop_recovers(make_agent, postgres_url,
                                                             tmp_path):
    agent = make_agent(None, postgres_url, env=FAST).start()
    pid = create(agent, 'n1', '--queues', 'a', '--pool', 'solo', '--max', '1')
    set_connections(postgres_url, False)
    try:
        wait_for(lambda: agent.listener_log().count('database unavailable') >= 3, 60,
                 message='the loop noticing the outage for three ticks')
        assert agent.rpc().supervisor.getProcessInfo('scs-n1')['pid'] == pid
    finally:
        set_connections(postgres_url, True)
    # A change written straight to the database is applied by the loop within a tick.
    settings = Settings.load(section={'home': str(agent.home), 'database_url': postgres_url})
    store = Store.from_settings(settings)
    store.create_node(settings.agent_id, 'n2', {'queues': ['b'], 'pool': 'solo',
                                                'max_concurrency': 1,
                                                'app': 'scs_supervisor.example'})
    store.engine.dispose()
    agent.wait_running('n2')
    assert agent.node('n1')['pid'] == pid
    consuming(agent, 'n2', {'b'}, tmp_path)
