from scs_supervisor.syncplan import SyncPlan, plan_sync


def test_plan_keeps_only_managed_groups():
    plan = plan_sync(['scs-b', 'other', 'scs-a'], ['scs-c', 'scs_http'], ['hand', 'scs-d'])
    assert plan == SyncPlan(add=('scs-a', 'scs-b'), change=('scs-c',), remove=('scs-d',))
    assert plan.as_result() == {'added': ['a', 'b'], 'changed': ['c'], 'removed': ['d']}


def test_empty_plan_is_false():
    assert not plan_sync([], ['other'], ['x'])
