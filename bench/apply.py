"""Benchmark: ``scs.sync()`` against hand-written sections plus ``supervisorctl update``.

For 1, 10 and 50 new nodes, time from the start of the apply until every worker is RUNNING:
  scs:  rows written to the database, then ``scs.sync()``;
  hand: the same sections written as files, then ``supervisorctl update``.
Both run in the same supervisord, on the embedded broker, one after the other, in the same run.
Also: the worst ``supervisorctl status`` latency while a 50-node sync runs, and the time to
render 1,000 nodes.

    .venv/bin/python bench/apply.py [--sizes 1,10,50] [--rounds 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scs_supervisor import programs  # noqa: E402
from scs_supervisor.settings import Settings  # noqa: E402
from scs_supervisor.store import Store  # noqa: E402
from tests.integration.conftest import BIN, Agent, wait_for  # noqa: E402

NODE = {'queues': ['bench'], 'pool': 'solo', 'min_concurrency': 1, 'max_concurrency': 1,
        'app': 'scs_supervisor.example'}


def all_running(agent, names, timeout=300, prefix=programs.GROUP_PREFIX):
    wanted = {prefix + n for n in names}

    def check():
        infos = agent.rpc().supervisor.getAllProcessInfo()
        states = {i['group']: i['statename'] for i in infos if i['group'] in wanted}
        return len(states) == len(wanted) and set(states.values()) == {'RUNNING'}
    wait_for(check, timeout, 0.05, message='all RUNNING')


def all_gone(agent, prefix):
    wait_for(lambda: not any(i['group'].startswith(prefix)
                             for i in agent.rpc().supervisor.getAllProcessInfo()),
             300, 0.1, message='cleanup')


class StatusWatcher:
    """Times what ``supervisorctl status`` asks (getAllProcessInfo), in a thread, by phase."""

    def __init__(self, agent):
        self.agent = agent
        self.phase = 'before'
        self.latencies: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        rpc = self.agent.rpc()
        while not self._stop.is_set():
            phase, began = self.phase, time.perf_counter()
            rpc.supervisor.getAllProcessInfo()
            self.latencies.setdefault(phase, []).append(time.perf_counter() - began)
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def report(self, label):
        for phase, values in self.latencies.items():
            print(f'  {label:<22} {phase:<10} {len(values):>4} calls  median '
                  f'{statistics.median(values) * 1000:6.1f} ms  max {max(values) * 1000:7.1f} ms')


def mark(watcher, phase):
    if watcher:
        watcher.phase = phase


def time_scs(agent, store, settings, names, watcher=None):
    for name in names:
        store.create_node(settings.agent_id, name, NODE)
    began = time.perf_counter()
    mark(watcher, 'applying')
    agent.rpc().scs.sync()
    mark(watcher, 'starting')
    all_running(agent, names)
    elapsed = time.perf_counter() - began
    mark(watcher, 'after')
    for name in names:
        store.delete_node(name)
    agent.rpc().scs.sync()
    all_gone(agent, 'scs-')
    return elapsed


def hand_written(settings, names):
    """The sections scs renders, under a name scs does not own (its syncs leave them alone)."""
    options = programs.RenderOptions.from_settings(settings)
    specs = [programs.ProgramSpec(name=n, queues=('bench',), min_concurrency=1,
                                  max_concurrency=1, pool='solo', app=NODE['app'],
                                  broker_url=settings.broker_url) for n in names]
    return {f'hand-{name[len("scs-"):]}': text.replace('[program:scs-', '[program:hand-')
            for name, text in programs.render_programs(specs, options).items()}


def time_hand(agent, settings, names, watcher=None):
    files = hand_written(settings, names)
    began = time.perf_counter()
    mark(watcher, 'applying')
    for filename, text in files.items():
        (settings.programs_dir / filename).write_text(text)
    update = subprocess.run([str(BIN / 'supervisorctl'), '-c', str(agent.conf), 'update'],
                            capture_output=True, text=True)
    assert update.returncode == 0, update.stderr
    mark(watcher, 'starting')
    all_running(agent, names, prefix='hand-')
    elapsed = time.perf_counter() - began
    mark(watcher, 'after')
    for filename in files:
        (settings.programs_dir / filename).unlink()
    subprocess.run([str(BIN / 'supervisorctl'), '-c', str(agent.conf), 'update'],
                   capture_output=True)
    all_gone(agent, 'hand-')
    return elapsed


def time_render(count=1000, rounds=5):
    options = programs.RenderOptions(celery_bin='/opt/venv/bin/celery', logs_dir='/var/log/scs')
    specs = [programs.ProgramSpec(name=f'node-{i}', queues=('default', f'q{i}'),
                                  min_concurrency=1, max_concurrency=8,
                                  broker_url='amqp://u:p@127.0.0.1:5672//',
                                  env=(('A', 'b'),)) for i in range(count)]
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        programs.render_programs(specs, options)
        times.append(time.perf_counter() - began)
    return min(times), statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', default='1,10,50')
    parser.add_argument('--rounds', type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]

    best, median = time_render()
    print(f'render 1000 nodes: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms '
          f'(target < 100 ms)')

    with tempfile.TemporaryDirectory(prefix='scs-bench-') as tmp:
        agent = Agent(Path(tmp) / 'home', None).start()
        try:
            settings = Settings.load(section={'home': str(agent.home)})
            store = Store.from_settings(settings)
            print(f'{"nodes":>5} {"scs.sync s":>11} {"update s":>9} {"ratio":>6}')
            for size in sizes:
                for round_ in range(args.rounds):
                    names = [f'b{size}x{round_}n{i}' for i in range(size)]
                    hand = time_hand(agent, settings, [n + 'h' for n in names])
                    scs = time_scs(agent, store, settings, names)
                    print(f'{size:>5} {scs:>11.2f} {hand:>9.2f} {scs / hand:>6.2f}')
            size = max(sizes)
            print(f'status latency (getAllProcessInfo) around applying {size} new nodes '
                  f'(target: within 100 ms while the sync applies):')
            with StatusWatcher(agent) as watcher:
                time_scs(agent, store, settings, [f'lat{i}' for i in range(size)], watcher)
            watcher.report('scs.sync')
            with StatusWatcher(agent) as watcher:
                time_hand(agent, settings, [f'lath{i}' for i in range(size)], watcher)
            watcher.report('supervisorctl update')
            store.engine.dispose()
        finally:
            agent.stop()


if __name__ == '__main__':
    main()
