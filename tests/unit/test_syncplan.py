from scs_supervisor.syncplan import LiveDiff, SyncPlan, is_live_change, live_diff, plan_sync


def test_plan_keeps_only_managed_groups():
    plan = plan_sync(['scs-b', 'other', 'scs-a'], ['scs-c', 'scs_http', 'scs-e'],
                     ['hand', 'scs-d'], live=['scs-e', 'scs_http'])
    assert plan == SyncPlan(add=('scs-a', 'scs-b'), change=('scs-c',), remove=('scs-d',),
                            live=('scs-e',))
    assert plan.as_result() == {'added': ['a', 'b'], 'changed': ['c'], 'removed': ['d'],
                                'reconfigured': ['e']}


def test_empty_plan_is_false():
    assert not plan_sync([], ['other'], ['x'])


BASE = "/v/celery -A app worker -n w@%h -Q a,b -P prefork -l INFO --autoscale=4,1 -x"


def test_queue_and_autoscale_changes_are_live():
    assert is_live_change(BASE, BASE.replace('-Q a,b', '-Q a,b,c'))
    assert is_live_change(BASE, BASE.replace('--autoscale=4,1', '--autoscale=8,2'))


def test_other_changes_need_a_restart():
    assert not is_live_change(BASE, BASE.replace('-l INFO', '-l DEBUG'))
    assert not is_live_change(BASE, BASE.replace('-P prefork', '-P gevent'))
    assert not is_live_change(BASE, BASE.replace('-A app', '-A other'))
    threads = BASE.replace('-P prefork', '-P threads').replace('--autoscale=4,1', '-c 4')
    assert not is_live_change(threads, threads.replace('-c 4', '-c 8'))


def test_live_diff_names_queues_to_add_and_cancel_and_new_bounds():
    assert live_diff(BASE, BASE.replace('-Q a,b', '-Q c,b,d')) == LiveDiff(
        add=('c', 'd'), cancel=('a',))
    assert live_diff(BASE, BASE.replace('--autoscale=4,1', '--autoscale=8,2')) == LiveDiff(
        autoscale=(8, 2))
    assert not live_diff(BASE, BASE)


def test_live_diff_of_a_pool_without_autoscale_is_only_queues():
    threads = BASE.replace('--autoscale=4,1', '-c 4')
    assert live_diff(threads, threads.replace('-Q a,b', '-Q a')) == LiveDiff(cancel=('b',))
