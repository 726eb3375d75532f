"""Benchmarks of the supervisor loop, each against a baseline measured in the same run.

1. create and wait until consuming (``store.create_node`` + ``scs.sync`` + an operation, the
   path ``supervisorctl scs create --wait`` takes, without supervisorctl's own start-up)
   against a bare ``celery worker`` cold start to consuming, same flags and broker;
2. a queue added to a running node until consuming (``store.add_queue`` + ``scs.sync`` + an
   operation) against Celery's own ``app.control.add_consumer`` plus ``active_queues`` checks,
   what one would type without scs; scs's control client doing the same is printed alongside;
3. drift (an external ``cancel_consumer``) until consuming again, in ticks;
4. one tick at 10, 50 and 100 nodes: broker round trips and wall time.

    .venv/bin/python bench/loop.py [--broker URL] [--rounds 3] [--queue-rounds 15]
                                   [--sizes 10,50,100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from celery import Celery

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scs_supervisor.control import Controller  # noqa: E402
from scs_supervisor.settings import Settings  # noqa: E402
from scs_supervisor.store import Store  # noqa: E402
from tests.integration.conftest import BIN, HOST, Agent, unique, wait_for  # noqa: E402

APP = 'scs_supervisor.example'
POLL_TIMEOUT = 0.3  # the reply window of each readiness poll, as operations use
#: Seconds between the baseline's checks of a live change: no later than the fast path asks.
RECHECK = 0.001


def until_consuming(control, nodename, queues, timeout=120, interval=0.02):
    def check():
        got = control.active_queues([nodename]).get(nodename)
        return got is not None and set(got) == set(queues)
    wait_for(check, timeout, interval, message=f'{nodename} consuming')


class CeleryControl:
    """Celery's own remote control, as ``until_consuming`` asks it."""

    def __init__(self, broker):
        self.app = Celery('bench', broker=broker, set_as_current=False)

    def add_consumer(self, nodename, queue, exchange, exchange_type, routing_key, options):
        [reply] = self.app.control.add_consumer(
            queue, exchange=exchange, exchange_type=exchange_type, routing_key=routing_key,
            options=options, destination=[nodename], reply=True, timeout=POLL_TIMEOUT)
        assert 'ok' in reply[nodename], reply

    def active_queues(self, nodenames):
        replies = self.app.control.inspect(destination=list(nodenames),
                                           timeout=POLL_TIMEOUT).active_queues() or {}
        return {name: [q['name'] for q in queues] for name, queues in replies.items()}


def scs_create(agent, store, settings, name, queue):
    began = time.perf_counter()
    store.create_node(settings.agent_id, name, {'queues': [queue], 'app': APP,
                                                'min_concurrency': 1, 'max_concurrency': 2})
    rpc = agent.rpc()
    rpc.scs.sync()
    op = rpc.scs.watch([name], 120)
    assert op['status'] == 'done', op
    return time.perf_counter() - began


def bare_create(broker, tmp, control, name, queue):
    """Start a bare worker with the flags scs would use; return (seconds, process)."""
    argv = [str(BIN / 'celery'), '-A', APP, 'worker', '-n', f'{name}@%h', '-Q', queue,
            '-P', 'prefork', '-l', 'INFO', '--autoscale=2,1', '--without-mingle',
            '--without-gossip']
    began = time.perf_counter()
    worker = subprocess.Popen(argv, env={**os.environ, 'CELERY_BROKER_URL': broker},
                              cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    until_consuming(control, f'{name}@{HOST}', [queue])
    return time.perf_counter() - began, worker


def scs_add_queue(agent, store, name, queue):
    began = time.perf_counter()
    store.add_queue(name, queue)
    rpc = agent.rpc()
    rpc.scs.sync()
    op = rpc.scs.watch([name], 60)
    assert op['status'] == 'done', op
    return time.perf_counter() - began


def raw_add_queue(control, nodename, queues, queue):
    began = time.perf_counter()
    control.add_consumer(nodename, queue, queue, 'direct', queue, {})
    until_consuming(control, nodename, queues + [queue], interval=RECHECK)
    return time.perf_counter() - began


def ticks(agent):
    return agent.status()['last_tick']


def report(label, ours, base, target):
    ratio = statistics.median(ours) / statistics.median(base)
    print(f'{label}: scs median {statistics.median(ours):.3f}s {fmt(ours)}; baseline median '
          f'{statistics.median(base):.3f}s {fmt(base)}; ratio {ratio:.2f} (target <= {target})')


def fmt(values):
    digits = 3 if max(values) < 0.1 else 2
    return '[' + ', '.join(f'{v:.{digits}f}' for v in values) + ']'


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--broker', default='amqp://guest:guest@127.0.0.1:5672//')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--queue-rounds', type=int, default=15,
                        help='queue-add rounds: each takes milliseconds, so more of them')
    parser.add_argument('--sizes', default='10,50,100')
    args = parser.parse_args()
    broker = args.broker
    run = unique('b')  # node names unique to this run: a shared broker may hold others
    with tempfile.TemporaryDirectory(prefix='scs-bench-') as tmp:
        agent = Agent(Path(tmp) / 'home', broker, env={'SCS_TICK_INTERVAL': '1'}).start()
        settings = Settings.load(section={'home': str(agent.home), 'broker_url': broker})
        store = Store.from_settings(settings)
        control = Controller(broker, timeout=POLL_TIMEOUT)
        try:
            print(f'broker {broker.split("@")[-1]}, {args.rounds} rounds, tick 1s')
            ours, base, bare = [], [], []
            for r in range(args.rounds):
                seconds, worker = bare_create(broker, tmp, control, f'{run}bare{r}',
                                              unique('bq'))
                base.append(seconds)
                bare.append(worker)
                ours.append(scs_create(agent, store, settings, f'{run}c{r}', unique('cq')))
            report('create until consuming', ours, base, 1.25)

            # The raw baseline uses a bare worker: scs would cancel a queue it did not add.
            ours, base, client = [], [], []
            raw_name = f'{run}bare0@{HOST}'
            raw_queues = list(control.active_queues([raw_name])[raw_name])
            celery_control = CeleryControl(broker)
            for _ in range(args.queue_rounds):
                for into, by in ((base, celery_control), (client, control)):
                    queue = unique('rq')
                    into.append(raw_add_queue(by, raw_name, raw_queues, queue))
                    raw_queues.append(queue)
                ours.append(scs_add_queue(agent, store, f'{run}c0', unique('aq')))
            report('queue added until consuming', ours, base, 2)
            print(f'  the same add_consumer + active_queues by the scs control client: median '
                  f'{statistics.median(client):.3f}s; ratio to Celery alone '
                  f'{statistics.median(client) / statistics.median(base):.2f}')
            for worker in bare:
                worker.terminate()
                worker.wait(60)

            nodename, queues = f'{run}c0@{HOST}', store.get_node(f'{run}c0')['queues']

            counts = []
            for _ in range(args.rounds):
                before = ticks(agent)['count']
                control.cancel_consumer(nodename, queues[0])
                until_consuming(control, nodename, queues, 60)
                counts.append(ticks(agent)['count'] - before)
            print(f'drift repaired (external cancel_consumer until consuming again): '
                  f'{counts} ticks (tick = 1s here; default 5s)')

            for name in [n['name'] for n in store.list_nodes()]:
                store.delete_node(name)
            agent.rpc().scs.sync()
            made = 0
            print(f'{"nodes":>5} {"round trips/tick":>17} {"tick wall s (median of 5)":>26}')
            for size in [int(s) for s in args.sizes.split(',')]:
                while made < size:
                    store.create_node(settings.agent_id, f'{run}t{made}', {
                        'queues': [f'tq{made}'], 'app': APP, 'min_concurrency': 1,
                        'max_concurrency': 1})
                    made += 1
                agent.rpc().scs.sync()
                op = agent.rpc().scs.watch([], 900)
                assert op['status'] == 'done', json.dumps(op)[:500]
                seen, trips, durations = ticks(agent)['count'], set(), []
                while len(durations) < 5:
                    tick = ticks(agent)
                    if tick['count'] > seen:
                        seen = tick['count']
                        trips.add(tick['round_trips'])
                        durations.append(tick['duration'])
                    time.sleep(0.2)
                print(f'{size:>5} {",".join(map(str, sorted(trips))):>17} '
                      f'{statistics.median(durations):>26.3f}')
        finally:
            store.engine.dispose()
            agent.stop()


if __name__ == '__main__':
    main()
