import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from scs_supervisor.models import Base
from scs_supervisor.reconcile import QueueDecl
from scs_supervisor.store import (
    OBSERVED_DEFAULTS,
    Conflict,
    NotFound,
    Store,
    Unavailable,
    make_engine,
    upgrade,
)
from scs_supervisor.validation import ValidationError


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f'sqlite:///{tmp_path / "scs.db"}')
    upgrade(engine)
    yield Store(engine, default_broker_url='redis://:secret@127.0.0.1/0')
    engine.dispose()


def test_migrations_match_models(store):
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(store):
    upgrade(store.engine)
    assert store.revision() == 0


def test_create_fills_defaults_and_masks_broker(store):
    node = store.create_node('host1', 'w1', {'queues': 'a,b'})
    assert node['queues'] == ['a', 'b']
    assert (node['min_concurrency'], node['max_concurrency'], node['pool']) == (1, 4, 'prefork')
    assert node['broker'] is None
    assert 'secret' not in node['broker_url']
    assert store.revision() == 1


def test_specs_are_per_agent_and_enabled_only(store):
    store.create_node('host1', 'w1', {'queues': ['q1']})
    store.create_node('host1', 'w2', {'queues': ['q2'], 'enabled': False})
    store.create_node('host2', 'w3', {'queues': ['q3']})
    [spec] = store.program_specs('host1')
    assert spec.name == 'w1' and spec.queues == ('q1',)
    assert spec.broker_url == 'redis://:secret@127.0.0.1/0'


def test_queue_order_survives_updates(store):
    store.create_node('h', 'w1', {'queues': ['a', 'b', 'c']})
    assert store.update_node('w1', {'queues': ['c', 'a']})['queues'] == ['c', 'a']
    assert store.add_queue('w1', 'b')['queues'] == ['c', 'a', 'b']
    assert store.remove_queue('w1', 'a')['queues'] == ['c', 'b']


def test_broker_by_url_is_created_once_and_by_name_must_exist(store):
    a = store.create_node('h', 'w1', {'broker': 'amqp://u:pw@h1//'})
    b = store.create_node('h', 'w2', {'broker': 'amqp://u:pw@h1//'})
    assert a['broker'] == b['broker'] == 'broker-1'
    assert a['broker_url'] == 'amqp://u:**@h1//'
    assert store.create_node('h', 'w3', {'broker': 'broker-1'})['broker'] == 'broker-1'
    with pytest.raises(ValidationError, match='no broker named nope'):
        store.create_node('h', 'w4', {'broker': 'nope'})
    assert [n['name'] for n in store.list_nodes()] == ['w1', 'w2', 'w3']


def test_duplicate_name_is_a_conflict(store):
    store.create_node('h', 'w1', {})
    with pytest.raises(Conflict):
        store.create_node('other-host', 'w1', {})


@pytest.mark.parametrize('changes', [
    {'max_concurrency': 0}, {'min_concurrency': 9}, {'queues': ['a b']}, {'pool': 'x'},
    {'env': {'LD_PRELOAD': 'x'}}, {'nope': 1},
])
def test_bad_update_changes_nothing(store, changes):
    store.create_node('h', 'w1', {'queues': ['a'], 'max_concurrency': 8})
    before, revision = store.get_node('w1'), store.revision()
    with pytest.raises(ValidationError):
        store.update_node('w1', changes)
    assert store.get_node('w1') == before and store.revision() == revision


def test_delete_and_not_found(store):
    store.create_node('h', 'w1', {})
    store.delete_node('w1')
    with pytest.raises(NotFound):
        store.get_node('w1')
    with pytest.raises(NotFound):
        store.delete_node('w1')
    with pytest.raises(NotFound):
        store.remove_queue('w1', 'x')


def test_unreachable_database_is_unavailable(tmp_path):
    engine = make_engine('postgresql://nobody@127.0.0.1:1/none')
    with pytest.raises(Unavailable, match='database unavailable'):
        Store(engine, default_broker_url='redis://h/0').list_nodes()


def test_sync_snapshot_reads_revision_nodes_and_brokers_the_loop_saw_down(store):
    store.create_node('host1', 'w1', {'queues': ['q1', 'q2']})
    store.create_node('host1', 'w2', {'queues': ['q3'], 'enabled': False})
    store.record_status('host1', {}, {'brokers': {'amqp://u:**@h1//': {'up': False},
                                                  'redis://h2/0': {'up': True}}})
    snapshot = store.sync_snapshot('host1')
    assert snapshot.revision == store.revision() == 2
    assert [s.name for s in snapshot.specs] == ['w1']
    assert snapshot.desired == {n.name: n for n in store.desired_nodes('host1')}
    assert [q.name for q in snapshot.desired['w1'].queues] == ['q1', 'q2']
    assert snapshot.brokers_down == {'amqp://u:**@h1//'}


def test_queue_changes_of_an_unknown_node_are_not_found(store):
    with pytest.raises(NotFound):
        store.add_queue('nope', 'a')
    assert store.revision() == 0


def test_queue_changes_keep_the_broker_and_reach_the_sync(store):
    store.create_broker('main', 'amqp://u:pw@h1//')
    store.create_queue('jobs', {'routing_key': 'rk', 'options': {'durable': False}})
    store.create_node('host1', 'w1', {'queues': ['a'], 'broker': 'main'})
    node = store.add_queue('w1', 'jobs')
    assert (node['broker'], node['broker_url']) == ('main', 'amqp://u:**@h1//')
    assert node['queues'] == ['a', 'jobs'] and set(OBSERVED_DEFAULTS) <= set(node)
    assert store.remove_queue('w1', 'a')['broker'] == 'main'
    snapshot = store.sync_snapshot('host1')
    assert snapshot.specs[0].broker_url == snapshot.desired['w1'].broker_url == 'amqp://u:pw@h1//'
    assert snapshot.desired['w1'].queues == (QueueDecl('jobs', 'jobs', 'direct', 'rk',
                                                       (('durable', False),)),)
