"""``/health`` and ``/metrics``: is everything up, and what the supervisor loop saw."""

from __future__ import annotations

import json
import time
import xmlrpc.client
from collections import Counter

import falcon
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scs_supervisor.http.listing import NodeListing
from scs_supervisor.store import Store, StoreError

LISTENER = 'scs_listener'
#: Node states counted in ``scs_nodes`` even when no node is in them.
NODE_STATES = ('RUNNING', 'STARTING', 'BACKOFF', 'STOPPED', 'EXITED', 'FATAL', 'ABSENT',
               'DISABLED')
SUPERVISOR_DOWN = (OSError, xmlrpc.client.Fault)


def listener_check(supervisor, status: dict, tick_interval: float) -> str:
    """'ok', or why the supervisor loop is not doing its rounds."""
    state = supervisor.process_info(LISTENER)['statename']
    if state != 'RUNNING':
        return f'{LISTENER} is {state}'
    at = (status.get('last_tick') or {}).get('at')
    if at is None:
        return 'no tick recorded yet'
    age = time.time() - at
    return 'ok' if age <= 3 * tick_interval + 5 else f'last tick {age:.0f}s ago'


class Health:
    """``/health``: the database, supervisord, the listener and each broker; no token needed."""

    def __init__(self, settings, store: Store, supervisor):
        self.settings, self.store, self.supervisor = settings, store, supervisor

    def on_get(self, req, resp):
        checks, brokers = {}, {}
        try:
            self.store.revision()
            checks['database'] = 'ok'
        except StoreError as exc:
            checks['database'] = str(exc)
        try:
            self.supervisor.ping()
            checks['supervisord'] = 'ok'
        except SUPERVISOR_DOWN as exc:
            checks['supervisord'] = f'unavailable: {exc}'
        status = {}
        if checks['supervisord'] == 'ok':
            try:
                status = self.supervisor.status()
                checks['listener'] = listener_check(self.supervisor, status,
                                                    self.settings.tick_interval)
            except SUPERVISOR_DOWN as exc:
                checks['listener'] = f'unknown: {exc}'
        for url, broker in (status.get('brokers') or {}).items():
            brokers[url] = 'ok' if broker.get('up') else f'down: {broker.get("last_error", "")}'
        healthy = all(v == 'ok' for v in (*checks.values(), *brokers.values()))
        resp.status = falcon.HTTP_200 if healthy else falcon.HTTP_503
        resp.media = {'status': 'ok' if healthy else 'degraded', **checks, 'brokers': brokers}


class LoopCollector:
    """Prometheus metrics read fresh from supervisord and the loop's records on each scrape."""

    def __init__(self, supervisor, listing: NodeListing):
        self.supervisor, self.listing = supervisor, listing

    def collect(self):
        up = GaugeMetricFamily('scs_supervisord_up', 'supervisord answers the scs namespace')
        try:
            status = self.supervisor.status()
            nodes = json.loads(self.listing.current().body)
        except SUPERVISOR_DOWN:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_state = GaugeMetricFamily('scs_nodes', 'Nodes of this agent by supervisord state',
                                     labels=['state'])
        counts = Counter(n['state'] for n in nodes)
        for state in sorted(set(NODE_STATES) | set(counts)):
            by_state.add_metric([state], counts[state])
        yield by_state
        restarts = CounterMetricFamily('scs_node_restarts',
                                       'Restarts by the supervisor loop since it started',
                                       labels=['node'])
        consuming = GaugeMetricFamily('scs_node_consuming_ok',
                                      'The node consumes exactly its queues (last tick)',
                                      labels=['node'])
        for node in nodes:
            restarts.add_metric([node['name']], node.get('restarts') or 0)
            wanted, seen = set(node['queues']), node.get('consuming')
            consuming.add_metric([node['name']], int(seen is not None and set(seen) == wanted))
        yield restarts
        yield consuming
        repairs = CounterMetricFamily('scs_drift_repairs',
                                      'Corrective actions by the supervisor loop since it started',
                                      labels=['action'])
        for action, count in sorted((status.get('repairs') or {}).items()):
            repairs.add_metric([action], count)
        yield repairs
        broker_up = GaugeMetricFamily('scs_broker_up', 'The broker answered the last probe',
                                      labels=['broker'])
        for url, broker in sorted((status.get('brokers') or {}).items()):
            broker_up.add_metric([url], int(bool(broker.get('up'))))
        yield broker_up
        tick = status.get('last_tick') or {}
        if tick.get('duration') is not None:
            yield GaugeMetricFamily('scs_tick_duration_seconds',
                                    'Wall time of the last supervisor loop tick',
                                    value=tick['duration'])
            yield GaugeMetricFamily('scs_tick_broker_round_trips',
                                    'Broker round trips of the last tick',
                                    value=tick.get('round_trips') or 0)


class Metrics:
    """``/metrics`` in the Prometheus text format."""

    def __init__(self, supervisor, listing: NodeListing):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(LoopCollector(supervisor, listing))

    def on_get(self, req, resp):
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(self.registry)
