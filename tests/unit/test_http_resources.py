"""Queues, brokers, a node's sub-resources, metrics and the OpenAPI document, at unit level."""

import re

from scs_supervisor.http.openapi import build_spec
from tests.unit.conftest import AUTH, TOKEN


def test_every_mutating_endpoint_in_the_spec_needs_the_token(http_env):
    client, store, supervisor = http_env
    store.create_node('h1', 'w1', {'queues': ['a']})
    mutating = [(method, path) for path, item in build_spec()['paths'].items()
                for method in item if method in ('post', 'put', 'patch', 'delete')]
    assert len(mutating) == 15
    for method, template in mutating:
        path = re.sub(r'\{[a-z_]+\}', lambda m: {'{queue}': 'a'}.get(m.group(0), 'w1'),
                      template)
        for headers in ({}, {'Authorization': 'Bearer wrong'}, {'Authorization': TOKEN},
                        {'Authorization': f'Basic {TOKEN}'}):
            done = client.simulate_request(method.upper(), path, json={'name': 'x'},
                                           headers=headers)
            assert done.status_code == 401, (method, path, headers)
            assert done.headers['www-authenticate'] == 'Bearer'
    assert store.revision() == 1 and supervisor.syncs == 0 and supervisor.restarts == []
    assert client.simulate_get('/nodes/w1').json['queues'] == ['a']


def test_node_queues_autoscale_and_restart(http_env):
    client, store, supervisor = http_env
    store.create_node('h1', 'w1', {'queues': ['a']})
    assert client.simulate_put('/nodes/w1/queues/b', headers=AUTH).json['queues'] == ['a', 'b']
    assert client.simulate_put('/nodes/w1/queues/b', headers=AUTH).json['queues'] == ['a', 'b']
    assert client.simulate_delete('/nodes/w1/queues/a', headers=AUTH).json['queues'] == ['b']
    done = client.simulate_delete('/nodes/w1/queues/b', headers=AUTH)
    assert done.status_code == 400 and 'at least one queue' in done.json['description']
    assert client.simulate_delete('/nodes/w1/queues/zz', headers=AUTH).status_code == 404
    assert client.simulate_put('/nodes/w1/queues/a%20b', headers=AUTH).status_code == 400
    done = client.simulate_put('/nodes/w1/autoscale', json={'min': 2, 'max': 6}, headers=AUTH)
    assert (done.json['min_concurrency'], done.json['max_concurrency']) == (2, 6)
    for bad, field in (({'min': 1}, 'max'), ({'min': 3, 'max': 2}, 'min_concurrency'),
                       ({'min': 1, 'max': 2, 'x': 1}, 'x'), ({'min': 'a', 'max': 2}, 'min')):
        done = client.simulate_put('/nodes/w1/autoscale', json=bad, headers=AUTH)
        assert done.status_code == 400 and done.json['description'].startswith(field), bad
    assert client.simulate_post('/nodes/w1/restart', headers=AUTH).status_code == 200
    assert supervisor.restarts == ['w1']
    store.update_node('w1', {'enabled': False})
    refused = client.simulate_post('/nodes/w1/restart', headers=AUTH)
    assert refused.status_code == 409
    assert refused.json['description'] == 'node w1 is disabled: enable it instead'
    assert client.simulate_post('/nodes/nope/restart', headers=AUTH).status_code == 404
    assert supervisor.restarts == ['w1'] and supervisor.syncs == 4


def test_queues(http_env):
    client, store, supervisor = http_env
    done = client.simulate_post('/queues', json={
        'name': 'images', 'exchange': 'media', 'exchange_type': 'topic',
        'routing_key': 'images.#', 'options': {'durable': True,
                                               'queue_arguments': {'x-max-priority': 5}}},
        headers=AUTH)
    assert done.status_code == 201 and done.headers['location'] == '/queues/images'
    assert done.json == {'name': 'images', 'exchange': 'media', 'exchange_type': 'topic',
                         'routing_key': 'images.#', 'nodes': [], 'options': {
                             'durable': True, 'queue_arguments': {'x-max-priority': 5}}}
    assert client.simulate_post('/queues', json={'name': 'images'},
                                headers=AUTH).status_code == 409
    defaults = client.simulate_post('/queues', json={'name': 'q2'}, headers=AUTH).json
    assert (defaults['exchange'], defaults['routing_key']) == ('q2', 'q2')
    for bad, field in (({'name': 'a,b'}, 'name'), ({'name': 'q', 'exchange_type': 'x'},
                                                   'exchange_type'),
                       ({'name': 'q', 'options': {'command': 1}}, 'options'),
                       ({'name': 'q', 'options': {'durable': 'yes'}}, 'options.durable'),
                       ({'name': 'q', 'routing_key': 'a b'}, 'routing_key'),
                       ({'name': 'q', 'colour': 'red'}, 'colour')):
        done = client.simulate_post('/queues', json=bad, headers=AUTH)
        assert done.status_code == 400 and done.json['description'].startswith(field), bad
    store.create_node('h1', 'w1', {'queues': ['images', 'q2']})
    store.create_node('h1', 'w2', {'queues': ['images']})
    assert client.simulate_get('/queues/images').json['nodes'] == ['w1', 'w2']
    patched = client.simulate_patch('/queues/images', json={'routing_key': 'img'},
                                    headers=AUTH).json
    assert patched['routing_key'] == 'img' and patched['exchange'] == 'media'
    done = client.simulate_delete('/queues/q2', headers=AUTH)
    assert done.status_code == 409 and 'w1' in done.json['description']
    syncs = supervisor.syncs
    assert client.simulate_delete('/queues/q2?force=true', headers=AUTH).status_code == 204
    assert store.get_node('w1')['queues'] == ['images'] and supervisor.syncs == syncs + 1
    done = client.simulate_delete('/queues/images?force=true', headers=AUTH)
    assert done.status_code == 409 and 'consumes only images' in done.json['description']
    assert store.get_node('w2')['queues'] == ['images']  # nothing changed
    assert client.simulate_delete('/queues/nope', headers=AUTH).status_code == 404
    assert [q['name'] for q in client.simulate_get('/queues').json] == ['images']


def test_brokers_mask_passwords(http_env):
    client, store, supervisor = http_env
    done = client.simulate_post('/brokers', json={
        'name': 'main', 'url': 'amqp://app:s3cret@127.0.0.1:5672//'}, headers=AUTH)
    assert done.status_code == 201
    assert done.json == {'name': 'main', 'url': 'amqp://app:**@127.0.0.1:5672//', 'nodes': []}
    assert 's3cret' not in client.simulate_get('/brokers').text
    assert client.simulate_post('/brokers', json={'name': 'main', 'url': 'redis://x//'},
                                headers=AUTH).status_code == 409
    for bad, field in (({'name': 'a b', 'url': 'redis://x'}, 'name'),
                       ({'name': 'b', 'url': 'http://x'}, 'url'),
                       ({'name': 'b', 'url': 'redis://x', 'pw': 1}, 'pw')):
        done = client.simulate_post('/brokers', json=bad, headers=AUTH)
        assert done.status_code == 400 and done.json['description'].startswith(field), bad
    store.create_node('h1', 'w1', {'broker': 'main'})
    assert client.simulate_get('/brokers/main').json['nodes'] == ['w1']
    syncs = supervisor.syncs
    done = client.simulate_patch('/brokers/main', json={'url': 'redis://:pw@127.0.0.1:6379/1'},
                                 headers=AUTH)
    assert done.json['url'] == 'redis://:**@127.0.0.1:6379/1' and supervisor.syncs == syncs + 1
    assert 'pw@' not in client.simulate_get('/nodes/w1').text
    assert client.simulate_delete('/brokers/main', headers=AUTH).status_code == 409
    store.update_node('w1', {'broker': None})
    assert client.simulate_delete('/brokers/main', headers=AUTH).status_code == 204
    assert client.simulate_get('/brokers/main').status_code == 404


def test_metrics(http_env):
    client, store, _ = http_env
    store.create_node('h1', 'w1', {'queues': ['a']})
    done = client.simulate_get('/metrics')
    assert done.status_code == 200 and done.headers['content-type'].startswith('text/plain')
    lines = done.text.splitlines()
    assert 'scs_supervisord_up 1.0' in lines
    assert 'scs_node_restarts_total{node="w1"} 0.0' in lines
    assert 'scs_drift_repairs_total{action="add_consumer"} 2.0' in lines
    assert 'scs_broker_up{broker="amqp://guest:**@localhost//"} 1.0' in lines
    assert 'scs_tick_duration_seconds 0.05' in lines


def test_openapi_document(http_env):
    client, _, _ = http_env
    spec = client.simulate_get('/openapi.json').json
    assert spec['openapi'] == '3.1.0'
    routes = {'/nodes', '/nodes/{name}', '/nodes/{name}/disable', '/nodes/{name}/enable',
              '/nodes/{name}/restart', '/nodes/{name}/autoscale', '/nodes/{name}/queues/{queue}',
              '/operations/{op_id}', '/queues', '/queues/{name}', '/brokers', '/brokers/{name}',
              '/health', '/metrics', '/openapi.json'}
    assert set(spec['paths']) == routes
