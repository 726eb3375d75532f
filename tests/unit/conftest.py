"""Shared unit-test parts: the HTTP app on a real SQLite store with a stand-in supervisord."""

import time
import uuid
import xmlrpc.client

import pytest
from falcon import testing

from scs_supervisor.http import create_app
from scs_supervisor.settings import Settings
from scs_supervisor.store import Store, make_engine, upgrade

TOKEN = 'secret-token'
AUTH = {'Authorization': f'Bearer {TOKEN}'}


class RecordingSupervisor:
    """Stands in for supervisord: records syncs and answers from the store."""

    def __init__(self, store):
        self.store, self.syncs, self.restarts, self.operations = store, 0, [], {}

    def sync(self):
        self.syncs += 1
        return {'added': [], 'changed': [], 'removed': [], 'reconfigured': [], 'errors': {}}

    def process_states(self):
        infos = [{'group': f'scs-{n["name"]}', 'name': f'scs-{n["name"]}', 'statename': 'RUNNING',
                  'pid': 0, 'start': 0} for n in self.store.list_nodes() if n['enabled']]
        return infos, {}

    def get_node(self, name):
        return self.with_state(self.store.get_node(name))

    @staticmethod
    def with_state(node):
        return {**node, 'state': 'RUNNING' if node['enabled'] else 'DISABLED', 'pid': 0}

    def ping(self):
        return '1.0'

    def status(self):
        return {'agent': 'h1', 'brokers': {'amqp://guest:**@localhost//': {'up': True}},
                'last_tick': {'at': time.time(), 'duration': 0.05, 'round_trips': 3},
                'repairs': {'add_consumer': 2}}

    def process_info(self, name):
        return {'name': name, 'statename': 'RUNNING'}

    def start_operation(self, names, timeout):
        op_id = uuid.uuid4().hex
        enabled = all(self.store.get_node(n)['enabled'] for n in names)
        self.operations[op_id] = {'id': op_id, 'nodes': names, 'status': (
            'done' if enabled else 'failed'), 'detail': '' if enabled else 'not enabled'}
        return op_id

    def watch(self, names, timeout):
        return self.get_operation(self.start_operation(names, timeout))

    def get_operation(self, op_id):
        if op_id in self.operations:
            return self.operations[op_id]
        raise xmlrpc.client.Fault(1106, f'OPERATION_NOT_FOUND: no operation {op_id}')

    def restart_node(self, name):
        self.restarts.append(name)


@pytest.fixture
def http_env(tmp_path):
    settings = Settings.load(environ={}, section={'home': str(tmp_path), 'agent_id': 'h1'})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    store = Store(engine, default_broker_url=settings.broker_url)
    supervisor = RecordingSupervisor(store)
    yield testing.TestClient(create_app(settings, store, supervisor, TOKEN)), store, supervisor
    engine.dispose()
