"""GET /nodes from a snapshot: fresh after our writes, at most MAX_AGE old otherwise."""

import json

from scs_supervisor.http.listing import NodeListing
from tests.unit.conftest import AUTH, RecordingSupervisor


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class CountingSupervisor(RecordingSupervisor):
    def __init__(self, store):
        super().__init__(store)
        self.state_calls = 0

    def process_states(self):
        self.state_calls += 1
        return super().process_states()


class CountingStore:
    """The real store, counting how often the node list is read."""

    def __init__(self, store):
        self.store, self.reads = store, 0

    def versions(self, agent):
        return self.store.versions(agent)

    def list_nodes(self, agent):
        self.reads += 1
        return self.store.list_nodes(agent)


def names(listing):
    return [n['name'] for n in json.loads(listing.current().body)]


def test_the_snapshot_is_reused_then_checked_then_rebuilt(http_env):
    _, store, _ = http_env
    settings = type('S', (), {'agent_id': 'h1'})()
    clock, counting = Clock(), CountingStore(store)
    supervisor = CountingSupervisor(store)
    listing = NodeListing(settings, counting, supervisor, max_age=0.25, clock=clock)
    store.create_node('h1', 'w1', {})
    assert names(listing) == ['w1'] and counting.reads == 1
    store.create_node('h1', 'w2', {})  # written elsewhere (supervisorctl, another agent)
    assert names(listing) == ['w1'] and supervisor.state_calls == 1  # within MAX_AGE
    clock.now += 0.3
    assert names(listing) == ['w1', 'w2'] and counting.reads == 2
    clock.now += 0.3
    assert names(listing) == ['w1', 'w2'] and counting.reads == 2  # nothing moved: no read
    assert supervisor.state_calls == 3  # ... but process states are asked for again
    store.create_node('h1', 'w3', {})
    listing.invalidate()
    assert names(listing) == ['w1', 'w2', 'w3'] and counting.reads == 3


def test_writes_through_the_api_show_at_once_and_etags_save_the_body(http_env):
    client, store, _ = http_env
    first = client.simulate_get('/nodes')
    assert first.status_code == 200 and first.json == [] and first.headers['etag']
    same = client.simulate_get('/nodes', headers={'If-None-Match': first.headers['etag']})
    assert same.status_code == 304 and same.content == b''
    client.simulate_post('/nodes', json={'name': 'w1'}, headers=AUTH)
    after = client.simulate_get('/nodes', headers={'If-None-Match': first.headers['etag']})
    assert after.status_code == 200 and [n['name'] for n in after.json] == ['w1']
    assert after.json[0]['state'] == 'RUNNING' and after.headers['etag'] != first.headers['etag']
    client.simulate_post('/nodes/w1/disable', headers=AUTH)
    assert client.simulate_get('/nodes').json[0]['state'] == 'DISABLED'
