"""The HTTP API at unit level: falcon.testing, a real SQLite store, a recording supervisor."""

import pytest

from scs_supervisor.http.server import BindError, is_loopback, parse_bind
from tests.unit.conftest import AUTH


def test_create_then_read(http_env):
    client, store, supervisor = http_env
    done = client.simulate_post('/nodes', json={'name': 'w1', 'queues': ['a', 'b'],
                                                'max_concurrency': 3}, headers=AUTH)
    assert done.status_code == 201 and done.headers['location'] == '/nodes/w1'
    assert done.json['queues'] == ['a', 'b'] and done.json['max_concurrency'] == 3
    assert supervisor.syncs == 1
    assert [n['name'] for n in client.simulate_get('/nodes').json] == ['w1']
    assert client.simulate_get('/nodes/w1').json['agent'] == 'h1'


@pytest.mark.parametrize('body,field', [
    ({'name': 'a b'}, 'name'), ({'name': 'w1', 'queues': ['x y']}, 'queues'),
    ({'name': 'w1', 'min_concurrency': 5, 'max_concurrency': 2}, 'min_concurrency'),
    ({'name': 'w1', 'env': {'LD_PRELOAD': 'x'}}, 'env.LD_PRELOAD'),
    ({'name': 'w1', 'command': 'x'}, 'command'), ({'name': 'w1', 'pool': 'x'}, 'pool'),
])
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(http_env, body, field):
    client, store, supervisor = http_env
    done = client.simulate_post('/nodes', json=body, headers=AUTH)
    assert done.status_code == 400
    assert done.json['description'].startswith(f'{field}:')
    assert store.revision() == 0 and supervisor.syncs == 0


def test_errors(http_env):
    client, store, _ = http_env
    store.create_node('h1', 'w1', {})
    assert client.simulate_post('/nodes', json={'name': 'w1'}, headers=AUTH).status_code == 409
    assert client.simulate_get('/nodes/nope').status_code == 404
    assert client.simulate_patch('/nodes/nope', json={'pool': 'solo'},
                                 headers=AUTH).status_code == 404
    assert client.simulate_post('/nodes', body='{"name": ', headers={
        **AUTH, 'Content-Type': 'application/json'}).status_code == 400
    assert client.simulate_post('/nodes', body='name=x', headers={
        **AUTH, 'Content-Type': 'application/x-www-form-urlencoded'}).status_code == 415
    big = client.simulate_post('/nodes', body='x' * (65 * 1024), headers={
        **AUTH, 'Content-Type': 'application/json'})
    assert big.status_code == 413
    assert client.simulate_post('/nodes', json=[1], headers=AUTH).status_code == 400


def test_patch_disable_enable_delete(http_env):
    client, store, supervisor = http_env
    store.create_node('h1', 'w1', {'queues': ['a']})
    assert client.simulate_patch('/nodes/w1', json={'queues': ['a', 'b']},
                                 headers=AUTH).json['queues'] == ['a', 'b']
    assert client.simulate_post('/nodes/w1/disable', headers=AUTH).json['enabled'] is False
    assert client.simulate_post('/nodes/w1/enable', headers=AUTH).json['enabled'] is True
    assert client.simulate_delete('/nodes/w1', headers=AUTH).status_code == 204
    assert client.simulate_get('/nodes/w1').status_code == 404
    assert supervisor.syncs == 4


def test_health_is_open(http_env):
    client, _, _ = http_env
    done = client.simulate_get('/health')
    assert done.status_code == 200 and done.json == {
        'status': 'ok', 'database': 'ok', 'supervisord': 'ok', 'listener': 'ok',
        'brokers': {'amqp://guest:**@localhost//': 'ok'}}


def test_bind_rules():
    assert parse_bind('127.0.0.1:8000') == ('127.0.0.1', 8000)
    assert parse_bind('[::1]:9000') == ('::1', 9000)
    assert is_loopback('127.0.0.1') and is_loopback('::1') and not is_loopback('0.0.0.0')
    for bad in ('8000', 'host:80', '1.2.3.4:0', '1.2.3.4:x'):
        with pytest.raises(BindError):
            parse_bind(bad)
