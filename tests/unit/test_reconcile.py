from scs_supervisor.reconcile import (
    Action,
    DesiredNode,
    Observed,
    Policy,
    QueueDecl,
    Reconciler,
    current_actions,
)

URL = 'amqp://h//'


def node(name='w1', pool='prefork', queues=('a', 'b')):
    return DesiredNode(name, f'{name}@host', URL, tuple(QueueDecl(q, q, 'direct', q)
                                                        for q in queues), 1, 4, pool)


def running(**kw):
    values = dict(state='RUNNING', pid=10, pong=True, queues=['a', 'b'],
                  autoscaler={'max': 4, 'min': 1})
    values.update(kw)
    return Observed(**values)


def tick(rec, desired, observed, now, broker_up=True):
    rec.broker_seen(URL, broker_up, now)
    rec.pings_seen(desired, observed, now)
    return [(a.kind, a.node, a.queue.name if a.queue else None)
            for a in rec.decide(desired, observed, now)]


def test_in_line_node_needs_nothing():
    assert tick(Reconciler(), [node()], {'w1': running()}, 0) == []


def test_missing_and_extra_queues():
    actions = tick(Reconciler(), [node()], {'w1': running(queues=['b', 'x'])}, 0)
    assert actions == [('add_consumer', 'w1', 'a'), ('cancel_consumer', 'w1', 'x')]


def test_unknown_queues_are_left_alone():
    assert tick(Reconciler(), [node()], {'w1': running(queues=None)}, 0) == []


def test_autoscale_drift_only_for_autoscale_pools():
    drifted = {'w1': running(autoscaler={'max': 5, 'min': 2})}
    assert tick(Reconciler(), [node()], drifted, 0) == [('autoscale', 'w1', None)]
    assert tick(Reconciler(), [node(pool='threads')], drifted, 0) == []


def test_unresponsive_node_is_killed_after_missed_pings():
    rec, desired = Reconciler(Policy(missed_pings=3)), [node()]
    silent = {'w1': running(pong=False, queues=None, autoscaler=None)}
    assert tick(rec, desired, silent, 0) == []
    assert tick(rec, desired, silent, 5) == []
    assert tick(rec, desired, silent, 10) == [('kill', 'w1', None)]
    assert rec.node('w1').restart_count == 1


def test_the_exit_after_our_own_kill_is_not_a_crash():
    rec, desired = Reconciler(Policy(missed_pings=1, restart_limit=1)), [node()]
    silent = {'w1': running(pong=False, queues=None, autoscaler=None)}
    assert tick(rec, desired, silent, 0) == [('kill', 'w1', None)]
    assert tick(rec, desired, {'w1': Observed(state='STARTING', exits=1)}, 1) == []
    assert rec.node('w1').failed_reason == '' and rec.node('w1').restart_count == 1


def test_solo_nodes_get_a_longer_threshold():
    rec, desired = Reconciler(Policy(missed_pings=3, missed_pings_solo=5)), [node(pool='solo')]
    silent = {'w1': running(pong=False, queues=None, autoscaler=None)}
    kinds = [tick(rec, desired, silent, t * 5) for t in range(5)]
    assert kinds[:4] == [[], [], [], []] and kinds[4] == [('kill', 'w1', None)]


def test_broker_down_pauses_everything_and_grace_blocks_restarts():
    rec = Reconciler(Policy(missed_pings=1, wait_after_broker_revived=35))
    desired = [node()]
    silent = {'w1': running(pong=False, queues=['x'], autoscaler={'max': 9, 'min': 9})}
    assert tick(rec, desired, silent, 0, broker_up=False) == []
    assert rec.node('w1').missed_pings == 0
    # Back up: silence during the grace period restarts nothing.
    assert ('kill', 'w1', None) not in tick(rec, desired, silent, 10)
    assert ('kill', 'w1', None) not in tick(rec, desired, silent, 40)
    assert rec.brokers[URL].revived_at == 10
    assert tick(rec, desired, silent, 46)[0] == ('kill', 'w1', None)


def test_restarts_are_rate_limited_and_reported():
    rec = Reconciler(Policy(restart_limit=1, restart_window=60, failed_backoff=300))
    desired = [node()]
    fatal = {'w1': Observed(state='FATAL')}
    assert tick(rec, desired, fatal, 0) == [('start', 'w1', None)]
    assert tick(rec, desired, fatal, 10) == []
    memory = rec.node('w1')
    assert memory.failed_reason.startswith('restarted too often (1 in 60s')
    assert memory.retry_at == 310
    assert tick(rec, desired, fatal, 200) == []
    assert tick(rec, desired, fatal, 310) == [('start', 'w1', None)]
    assert 'next try in 300s' in memory.failed_reason
    assert memory.restart_count == 2


def test_crash_loop_beyond_the_limit_is_held():
    rec = Reconciler(Policy(restart_limit=2, restart_window=60))
    desired = [node()]
    assert tick(rec, desired, {'w1': Observed(state='STARTING', exits=1)}, 0) == []
    assert tick(rec, desired, {'w1': Observed(state='STARTING', exits=2)}, 5) == [
        ('hold', 'w1', None)]
    assert 'restarted too often' in rec.node('w1').failed_reason


def test_stopped_node_is_started_but_not_one_supervisord_is_about_to_start():
    assert tick(Reconciler(), [node()], {'w1': Observed(state='STOPPED')}, 0) == [
        ('start', 'w1', None)]
    assert tick(Reconciler(), [node()], {'w1': Observed(state='STOPPED', started=False)},
                0) == []
    assert tick(Reconciler(), [node()], {'w1': Observed(state='EXITED')}, 0) == []
    assert tick(Reconciler(), [node()], {'w1': Observed(state='STARTING')}, 0) == []


def test_a_failure_seen_twice_does_not_double_the_back_off():
    rec = Reconciler(Policy(restart_limit=1, failed_backoff=300))
    desired, fatal = [node()], {'w1': Observed(state='FATAL')}
    tick(rec, desired, fatal, 0)
    tick(rec, desired, {'w1': Observed(state='STARTING', exits=1)}, 1)
    tick(rec, desired, fatal, 2)
    assert rec.node('w1').retry_at == 301


def test_remote_actions_wait_for_nodes_changed_since_the_desired_state_was_loaded():
    actions = [Action('cancel_consumer', 'w1', QueueDecl('x')), Action('start', 'w1'),
               Action('add_consumer', 'w2', QueueDecl('a')), Action('autoscale', 'w3')]
    loaded = {'w1': node('w1'), 'w2': node('w2'), 'w3': node('w3')}
    assert current_actions(actions, loaded, dict(loaded)) == actions
    fresh = {'w1': node('w1', queues=('a', 'b', 'x')), 'w2': node('w2')}  # w3 deleted
    assert current_actions(actions, loaded, fresh) == [
        Action('start', 'w1'), Action('add_consumer', 'w2', QueueDecl('a'))]
