"""The HTTP API served by scs-agent, against a real supervisord, real workers and RabbitMQ."""

import concurrent.futures
import json
import socket
import threading
import urllib.error
import urllib.request

from tests.integration.conftest import active_queues, pid_alive, wait_for


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None, token=True):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header('Content-Type', 'application/json')
        if token:
            request.add_header('Authorization', f'Bearer {self.token}')
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None, response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b'null'), error.headers


def metrics_text(api):
    with urllib.request.urlopen(api.base + '/metrics', timeout=30) as response:
        return response.read().decode()


def test_nodes_over_http(make_agent, tmp_path, rabbitmq_vhost):
    port = free_port()
    agent = make_agent(rabbitmq_vhost, http=f'127.0.0.1:{port}').start()
    api = Api(f'http://127.0.0.1:{port}', (agent.home / 'api-token').read_text().strip())
    wait_for(lambda: api.call('GET', '/health')[0] == 200, 30, message='the API up')
    health = wait_for(lambda: (lambda h: h if h['listener'] == 'ok' else None)(
        api.call('GET', '/health')[1]), 30, message='the listener ticking')
    assert health['status'] == 'ok' and health['database'] == health['supervisord'] == 'ok'

    node = {'name': 'w1', 'queues': ['a', 'b'], 'app': 'scs_supervisor.example'}
    assert api.call('POST', '/nodes', node, token=False)[0] == 401
    assert agent.scs('list').count('\n') == 1  # header only: nothing was created

    status, body, headers = api.call('POST', '/nodes?wait=consuming&timeout=60', node)
    assert status == 201 and headers['Location'].endswith('/nodes/w1')
    assert body['state'] in ('STARTING', 'RUNNING') and body['queues'] == ['a', 'b']
    assert active_queues(agent.effective_broker, 'w1', tmp_path) == {'a', 'b'}
    pid = body['pid']

    status, body, _ = api.call('PATCH', '/nodes/w1?wait=consuming', {'queues': ['a', 'c']})
    assert status == 200 and body['pid'] == pid  # a live change: no restart
    assert active_queues(agent.effective_broker, 'w1', tmp_path) == {'a', 'c'}

    status, body, _ = api.call('POST', '/nodes', {'name': 'w2', 'max_concurrency': 99})
    assert status == 400 and body['description'].startswith('max_concurrency:')

    status, body, _ = api.call('POST', '/nodes?async=true', {
        'name': 'w3', 'queues': ['z'], 'app': 'scs_supervisor.example'})
    assert status == 202
    op = body['operation']
    wait_for(lambda: api.call('GET', op)[1]['status'] == 'done', 60, message='async done')

    names = [n['name'] for n in api.call('GET', '/nodes')[1]]
    assert names == ['w1', 'w3']

    # A node's queues, concurrency and restart, each applied to the running worker.
    status, body, _ = api.call('PUT', '/nodes/w1/queues/d?wait=consuming')
    assert status == 200 and body['queues'] == ['a', 'c', 'd'] and body['pid'] == pid
    assert active_queues(agent.effective_broker, 'w1', tmp_path) == {'a', 'c', 'd'}
    status, body, _ = api.call('DELETE', '/nodes/w1/queues/a?wait=consuming')
    assert status == 200 and body['pid'] == pid
    assert active_queues(agent.effective_broker, 'w1', tmp_path) == {'c', 'd'}
    status, body, _ = api.call('PUT', '/nodes/w1/autoscale', {'min': 2, 'max': 3})
    assert status == 200 and (body['min_concurrency'], body['max_concurrency']) == (2, 3)
    status, body, _ = api.call('POST', '/nodes/w1/restart?wait=consuming')
    assert status == 200 and body['pid'] != pid and pid_alive(body['pid'])
    assert not pid_alive(pid)
    pid = body['pid']

    # Deleting a queue in use: refused, then forced off the node that consumes it.
    assert api.call('DELETE', '/queues/c')[0] == 409
    assert api.call('DELETE', '/queues/c?force=true')[0] == 204
    assert api.call('GET', '/nodes/w1')[1]['queues'] == ['d']
    wait_for(lambda: active_queues(agent.effective_broker, 'w1', tmp_path) == {'d'}, 30,
             message='queue c cancelled')

    metrics = wait_for(lambda: (lambda text: text if 'scs_nodes{state="RUNNING"} 2.0' in text
                                else None)(metrics_text(api)), 30, message='2 RUNNING')
    assert 'scs_supervisord_up 1.0' in metrics
    assert f'scs_broker_up{{broker="{rabbitmq_vhost.replace(":guest@", ":**@")}"}} 1.0' in metrics
    for path in ('/nodes', '/health', '/brokers'):  # the password never shows
        assert 'guest:guest' not in json.dumps(api.call('GET', path)[1])
    assert 'guest:guest' not in metrics
    assert api.call('DELETE', '/nodes/w1')[0] == 204
    assert not pid_alive(pid)
    assert api.call('GET', '/nodes/w1')[0] == 404


def test_fifty_concurrent_creates_of_one_name(make_agent, tmp_path):
    port = free_port()
    agent = make_agent(http=f'127.0.0.1:{port}').start()
    api = Api(f'http://127.0.0.1:{port}', (agent.home / 'api-token').read_text().strip())
    wait_for(lambda: api.call('GET', '/health')[0] in (200, 503), 30, message='the API up')
    node = {'name': 'race', 'queues': ['r'], 'app': 'scs_supervisor.example', 'pool': 'solo'}
    start = threading.Barrier(50)

    def create(_):
        start.wait()
        return api.call('POST', '/nodes', node)

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(create, range(50)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] + [409] * 49, statuses
    assert all('already exists' in body['description'] for status, body, _ in results
               if status == 409)
    wait_for(lambda: active_queues(agent.effective_broker, 'race', tmp_path) == {'r'}, 60,
             message='the one worker consuming')
    def managed():
        return [(p['group'], p['statename']) for p in agent.rpc().supervisor.getAllProcessInfo()
                if p['group'].startswith('scs-')]
    wait_for(lambda: managed() == [('scs-race', 'RUNNING')], 30,
             message=f'one RUNNING worker (saw {managed()})')
