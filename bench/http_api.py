"""Benchmark: the HTTP API against a bare Falcon endpoint on the same server, in the same run.

One agent (supervisord with scs, embedded broker, SQLite) serves the API as ``[program:scs_http]``
on a free loopback port, with ``--nodes`` nodes in its database: ``--enabled`` of them run a
worker (pool solo, concurrency 1), the rest are disabled (``enabled: false``: no worker, state
DISABLED), so that the machine stays usable.  Beside it, in a process of its own, a minimal
Falcon app is served by waitress with the options scs-http uses (threads=8, ...).  At each number
of concurrent clients (``--clients``), in ``--slices`` slices taken in turn:

  bare            GET /ping of the bare app, a small fixed JSON: the baseline;
  GET /nodes      the API's list of nodes, with supervisord's state of each;
  create+delete   each client POSTs a disabled node of its own, then DELETEs it, over and over;
  ceilings        the bare app answering with the same JSON as GET /nodes: bytes encoded once,
                  and the same list encoded at every request (what a cached GET /nodes could do).

Then, at one client, create+delete of an enabled node: POST /nodes?wait=consuming (a real worker
starts and consumes), then DELETE (it stops).  Every ratio is requests/s over the bare endpoint's
requests/s at the same number of clients, measured in the same slices.  The server CPU column is
the CPU time the serving processes spent per request.  The clients are threads with a persistent
HTTP/1.1 connection each; when ``wrk`` is installed it measures bare and GET /nodes too, as a
check of the Python client.  Last, where one GET /nodes spends its time, step by step.

    .venv/bin/python bench/http_api.py [--duration 12] [--nodes 100] [--clients 1,8,32]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Import from the repository root (for tests.integration.conftest), not from this folder.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

HOST = '127.0.0.1'
APP = 'scs_supervisor.example'
BARE_BODY = {'status': 'ok', 'service': 'bare'}
TARGET = 0.5  # GET /nodes at --nodes nodes: at least half the bare endpoint's requests/s
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


# -- the bare endpoint -------------------------------------------------------------------------

def serve_bare(port: int, nodes_file: str) -> None:
    """A minimal Falcon app served exactly as ``scs-http`` serves the API (see server.py).

    ``/ping`` is the baseline; ``/nodes-bytes`` and ``/nodes-json`` answer with the JSON that
    GET /nodes gave (read from ``nodes_file``), as bytes encoded once or encoded per request.
    """
    import falcon
    from waitress import serve

    payload = Path(nodes_file).read_bytes()
    nodes = json.loads(payload)

    class Fixed:
        def __init__(self, media=None, data=None):
            self.media, self.data = media, data

        def on_get(self, req, resp):
            if self.data is not None:
                resp.data, resp.content_type = self.data, falcon.MEDIA_JSON
            else:
                resp.media = self.media

    app = falcon.App()
    app.add_route('/ping', Fixed(media=BARE_BODY))
    app.add_route('/nodes-bytes', Fixed(data=payload))
    app.add_route('/nodes-json', Fixed(media=nodes))
    serve(app, host=HOST, port=port, threads=8, ident='scs', clear_untrusted_proxy_headers=True)


# -- the load generator ------------------------------------------------------------------------

class RequestFailed(Exception):
    """A request answered with another status than the one the benchmark expects."""


class Connection:
    """One persistent HTTP/1.1 connection, with as little work per request as it can do.

    http.client parses every response header with the email package; on this 2-core machine
    that made the client, not the server, the limit of the bare endpoint (about half of wrk's
    requests/s at one client).  This reads only the status, Content-Length and Connection.
    Like http.client, it connects again when the server closed the connection after an answer
    (waitress does after every 204, which has no Content-Length: each DELETE costs the client
    a new connection, as it would cost any client).
    """

    def __init__(self, port: int, timeout: float = 120):
        self.port, self.timeout = port, timeout
        self.sock: socket.socket | None = None
        self.buffer = b''
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection((HOST, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b''

    def request(self, method: str, path: str, body: bytes = b'',
                headers: str = '') -> tuple[int, bytes]:
        """Send one request; return the status and the body of its response."""
        if self.sock is None:
            self._connect()
        length = f'Content-Length: {len(body)}\r\n' if body else ''
        self.sock.sendall(f'{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{length}{headers}\r\n'
                          .encode() + body)
        while (end := self.buffer.find(b'\r\n\r\n')) < 0:
            self.buffer += self._receive()
        head, rest = self.buffer[:end], self.buffer[end + 4:]
        status = int(head[9:12])
        found = CONTENT_LENGTH.search(head)
        if found is None and status not in (204, 304):
            raise RequestFailed(f'{method} {path}: {status} without Content-Length')
        size = int(found.group(1)) if found else 0
        while len(rest) < size:
            rest += self._receive()
        self.buffer = rest[size:]
        if CLOSE.search(head):
            self.close()
        return status, rest[:size]

    def _receive(self) -> bytes:
        data = self.sock.recv(262144)
        if not data:
            raise RequestFailed('the server closed the connection')
        return data

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


CONTENT_LENGTH = re.compile(rb'\r\ncontent-length:\s*(\d+)', re.I)
CLOSE = re.compile(rb'\r\nconnection:\s*close', re.I)


def call(conn: Connection, method: str, path: str, expect: int, body: bytes = b'',
         headers: str = '') -> bytes:
    status, data = conn.request(method, path, body, headers)
    if status != expect:
        raise RequestFailed(f'{method} {path}: {status} {data[:300]!r}')
    return data


@dataclass
class Result:
    """One case: latencies by request kind, the seconds measured, CPU seconds by process."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, samples, seconds: float, cpu: dict[str, float]) -> None:
        self.seconds += seconds
        for kind, latency in samples:
            self.latencies.setdefault(kind, []).append(latency)
        for name, used in cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + used

    def count(self, kind: str | None = None) -> int:
        if kind is not None:
            return len(self.latencies.get(kind, []))
        return sum(len(values) for values in self.latencies.values())

    def rate(self, kind: str | None = None) -> float:
        return self.count(kind) / self.seconds if self.seconds else 0.0

    def percentile(self, kind: str, pct: float) -> float:
        values = sorted(self.latencies.get(kind, []))
        if not values:
            return float('nan')
        return values[min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))]

    def cpu_per_request(self, names) -> str:
        count = self.count() or 1
        return ' + '.join(f'{name} {self.cpu.get(name, 0.0) / count * 1000:.2f}' for name in names)


class CPU:
    """CPU seconds (user + system) that processes have used, read from /proc."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids

    def read(self) -> dict[str, float]:
        used = {}
        for name, pid in self.pids.items():
            try:
                with open(f'/proc/{pid}/stat') as handle:
                    fields = handle.read().rsplit(')', 1)[1].split()
            except FileNotFoundError:
                continue
            used[name] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        return used


def drive(port: int, clients: int, warmup: float, seconds: float, work, cpu: CPU):
    """``clients`` threads, each on one persistent connection, call ``work(conn, me)`` in a loop.

    ``work`` does one unit (a request, or a create+delete cycle, which it always finishes) and
    returns ``[(kind, began, ended), ...]``.  The window opens after ``warmup`` seconds and once
    every client has finished a unit (a steady state, even when a request takes seconds), and
    lasts ``seconds``.  Returns the ``(kind, latency)`` of the requests that ended in the window,
    its length, and the CPU seconds each process used in it.
    """
    stop = threading.Event()
    ready = threading.Barrier(clients + 1)
    warm = [threading.Event() for _ in range(clients)]
    samples: list[list] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def run(me: int) -> None:
        conn = None
        try:
            conn = Connection(port)
            ready.wait()
            while not stop.is_set():
                samples[me].extend(work(conn, me))
                warm[me].set()
        except BaseException as exc:  # reported by the main thread, which stops the run
            errors.append(exc)
            stop.set()
            ready.abort()
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        stop.wait(warmup)
        for event in warm:
            while not stop.is_set() and not event.wait(0.1):
                pass
        before, began = cpu.read(), time.perf_counter()
        stop.wait(seconds)
        after, ended = cpu.read(), time.perf_counter()
    except threading.BrokenBarrierError:
        pass
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return ([(kind, end - start) for own in samples for kind, start, end in own
             if began <= end <= ended], ended - began,
            {name: after[name] - before[name] for name in after if name in before})


def get(path: str):
    def work(conn, me):
        start = time.perf_counter()
        call(conn, 'GET', path, 200)
        return [('GET', start, time.perf_counter())]
    return work


class Cycles:
    """Create and delete nodes of unique names, one client per thread."""

    def __init__(self, token: str, fields: dict, wait: bool = False):
        self.delete_headers = f'Authorization: Bearer {token}\r\n'
        self.headers = self.delete_headers + 'Content-Type: application/json\r\n'
        self.fields, self.wait = fields, wait
        self.run = uuid.uuid4().hex[:6]
        self.made = 0
        self.lock = threading.Lock()

    def __call__(self, conn, me):
        with self.lock:
            self.made += 1
            name = f'hb{self.run}c{me}n{self.made}'
        fields = dict(self.fields)
        if self.wait:  # a queue of its own, so that "consuming" means this worker
            fields['queues'] = [f'q{name}']
        body = json.dumps({'name': name, **fields}).encode()
        path = '/nodes?wait=consuming&timeout=120' if self.wait else '/nodes'
        t0 = time.perf_counter()
        created = json.loads(call(conn, 'POST', path, 201, body, self.headers))
        t1 = time.perf_counter()
        if self.wait and created['state'] not in ('STARTING', 'RUNNING'):
            raise RequestFailed(f'{name} is {created["state"]} after ?wait=consuming')
        call(conn, 'DELETE', f'/nodes/{name}', 204, headers=self.delete_headers)
        t2 = time.perf_counter()
        return [('POST', t0, t1), ('DELETE', t1, t2)]


@dataclass
class Case:
    """What to load, on which port, and whose CPU to count."""

    work: object
    port: int
    servers: tuple[str, ...]


def measure(cases: dict[str, Case], clients: int, slices: int, warmup: float, duration: float,
            cpu: CPU) -> dict[str, Result]:
    """Each case for ``duration`` seconds in all, in ``slices`` slices taken in turn."""
    results = {name: Result() for name in cases}
    for _ in range(slices):
        for name, case in cases.items():
            results[name].add(*drive(case.port, clients, warmup, duration / slices, case.work,
                                     cpu))
    return results


# -- wrk, as a check of the Python client --------------------------------------------------------

WRK_UNITS = {'us': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0}


def run_wrk(url: str, clients: int, seconds: float) -> dict:
    """wrk's requests/s, p50 and p99 (in seconds) for ``url``."""
    done = subprocess.run([shutil.which('wrk'), f'-t{min(2, clients)}', f'-c{clients}',
                           f'-d{max(1, round(seconds))}s', '--timeout', '60s', '--latency', url],
                          capture_output=True, text=True, timeout=seconds + 60)
    rate = re.search(r'Requests/sec:\s+([\d.]+)', done.stdout)
    if (done.returncode != 0 or rate is None or 'Non-2xx' in done.stdout
            or 'Socket errors' in done.stdout):
        raise RuntimeError(f'wrk failed on {url}: {done.stdout}{done.stderr}')
    out = {'rate': float(rate.group(1))}
    for pct in (50, 99):
        value, unit = re.search(rf'^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$', done.stdout,
                                re.M).groups()
        out[pct] = float(value) * WRK_UNITS[unit]
    return out


def client_check(clients_list, seconds: float, bare_port: int, api_port: int,
                 python: dict) -> None:
    """wrk on the bare endpoint and on GET /nodes, beside the Python client's figures."""
    if shutil.which('wrk') is None:
        print('\nclient check: wrk is not installed (apt-get install wrk): skipped')
        return
    print(f"\nclient check: wrk (C, epoll) on the same endpoints, {seconds:.0f}s each, after the "
          f"Python client; ratio: wrk's GET /nodes over wrk's bare; wrk/py: wrk's req/s over the "
          f"Python client's above")
    header('wrk/py')
    for clients in clients_list:
        bare = run_wrk(f'http://{HOST}:{bare_port}/ping', clients, seconds)
        nodes = run_wrk(f'http://{HOST}:{api_port}/nodes', clients, seconds)
        py_bare, py_nodes = python[clients]
        row(clients, 'bare GET /ping (wrk)', bare['rate'], bare[50], bare[99],
            note=f'{bare["rate"] / py_bare:.2f}')
        row(clients, 'GET /nodes (wrk)', nodes['rate'], nodes[50], nodes[99],
            nodes['rate'] / bare['rate'], note=f'{nodes["rate"] / py_nodes:.2f}')


# -- where one GET /nodes goes -------------------------------------------------------------------

def timed_in_turn(steps: dict, seconds: float) -> dict[str, float]:
    """Median seconds of each step, calling them one after the other, in turn, for ``seconds``.

    Taking them in turn puts every step through the same moments of a shared machine.
    """
    times: dict[str, list[float]] = {key: [] for key in steps}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times[next(iter(steps))]) < 5:
        for key, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: sorted(values)[len(values) // 2] for key, values in times.items()}


def breakdown(socket_path: Path, store, settings, api_port: int, bare_port: int,
              seconds: float) -> None:
    """Time the steps of GET /nodes one by one, one call at a time (medians).

    A request is served from the snapshot; the snapshot is checked at most every MAX_AGE
    seconds (versions + process states + merge + JSON), and the database list is read again
    only when the versions moved.
    """
    from scs_supervisor.http.listing import NodeListing
    from scs_supervisor.rpcclient import SupervisorClient

    client = SupervisorClient(f'unix://{socket_path}')
    api, bare = Connection(api_port), Connection(bare_port)
    as_json = call(api, 'GET', '/nodes', 200)
    listing = NodeListing(settings, store, client)
    steps = {
        'http': ('GET /nodes over HTTP, from the snapshot', lambda: call(api, 'GET', '/nodes',
                                                                        200)),
        'check': ('a snapshot check (versions, process states, merge, JSON)',
                  listing.refresh),
        'versions': ('  Store.versions: revision and newest observation',
                     lambda: store.versions(settings.agent_id)),
        'states': ('  process states + render errors (one XML-RPC multicall)',
                   client.process_states),
        'rebuild': ('a rebuild after a change: the above + Store.list_nodes',
                    lambda: (listing.invalidate(), listing.refresh())),
        'bare': ('bare GET /ping over HTTP', lambda: call(bare, 'GET', '/ping', 200)),
    }
    listing.refresh()
    t = timed_in_turn({key: fn for key, (_, fn) in steps.items()}, seconds)
    print(f'\nwhere one GET /nodes goes ({len(as_json)} bytes of JSON): each step alone, one '
          f'call at a time, steps taken in turn for {seconds:g}s, medians:')
    for key, (label, _) in steps.items():
        print(f'  {label:<60} {ms(t[key])} ms')
    print(f'  a check runs at most every {NodeListing(settings, store, client).max_age:g}s '
          f'whatever the request rate; a rebuild only after a change')
    api.close()
    bare.close()


# -- set-up and the report -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_bare(port: int, nodes_file: Path, log: Path) -> subprocess.Popen:
    with open(log, 'wb') as out:
        return subprocess.Popen([sys.executable, __file__, '--serve-bare', str(port),
                                 str(nodes_file)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen) -> None:
    """Stop ``process`` and everything in its session (it was started in a session of its own)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(10)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def answers(port: int, path: str) -> bytes:
    conn = Connection(port, timeout=30)
    try:
        return call(conn, 'GET', path, 200)
    finally:
        conn.close()


def make_nodes(agent, store, agent_id: str, count: int, enabled: int) -> None:
    """``count`` nodes straight in the database; the first ``enabled`` of them run a worker."""
    for i in range(count):
        on = i < enabled
        store.create_node(agent_id, f'n{i:03d}', {
            'queues': [f'q{i:03d}', 'bench'], 'app': APP, 'enabled': on,
            'pool': 'solo' if on else 'prefork', 'min_concurrency': 1,
            'max_concurrency': 1 if on else 4, 'env': {'BENCH': str(i)}})
    agent.rpc().scs.sync()


def ms(seconds: float) -> str:
    return f'{seconds * 1000:8.2f}'


def row(clients, label, rate, p50=None, p99=None, ratio=None, note=''):
    line = (f'{clients:>7}  {label:<34} {rate:8.1f} '
            + (f'{ms(p50)} {ms(p99)}' if p50 is not None else ' ' * 17)
            + (f' {ratio:6.3f}' if ratio is not None else ' ' * 7))
    print(line + (f'  {note}' if note else ''))


def header(note='server CPU ms/req'):
    print(f'{"clients":>7}  {"case":<34} {"req/s":>8} {"p50 ms":>8} {"p99 ms":>8} {"ratio":>6}'
          f'  {note}')


def get_row(clients, label, result: Result, base: float, case: Case, note: str = '') -> None:
    row(clients, label, result.rate(), result.percentile('GET', 50),
        result.percentile('GET', 99), result.rate() / base,
        result.cpu_per_request(case.servers) + note)


def cycle_rows(clients, label, result: Result, base: float | None, note: str) -> None:
    row(clients, label, result.rate(), ratio=result.rate() / base if base else None,
        note=f'{result.cpu_per_request(("supervisord", "scs-http"))}; '
             f'{result.rate("DELETE"):.2f} cycles/s{note}')
    for kind, path in (('POST', '/nodes'), ('DELETE', '/nodes/{name}')):
        row(clients, f'  {kind} {path}', result.rate(kind), result.percentile(kind, 50),
            result.percentile(kind, 99))


def enabled_cycles(api_port: int, token: str, count: int, cpu: CPU) -> Result:
    """``count`` create+delete cycles of an enabled node, one client: a worker starts and stops."""
    cycles = Cycles(token, {'app': APP, 'pool': 'solo', 'min_concurrency': 1,
                            'max_concurrency': 1, 'enabled': True}, wait=True)
    conn = Connection(api_port, timeout=180)
    before, began = cpu.read(), time.perf_counter()
    try:
        samples = [sample for _ in range(count) for sample in cycles(conn, 0)]
    finally:
        conn.close()
    after = cpu.read()
    result = Result()
    result.add([(kind, end - start) for kind, start, end in samples], time.perf_counter() - began,
               {name: after[name] - before[name] for name in after if name in before})
    return result


def benchmark(args, tmp: Path, started: list) -> None:
    from scs_supervisor.settings import Settings
    from scs_supervisor.store import Store
    from tests.integration.conftest import Agent, wait_for

    clients_list = [int(c) for c in args.clients.split(',')]
    api_port, bare_port = free_port(), free_port()
    agent = Agent(tmp / 'home', None, http=f'{HOST}:{api_port}')
    started.append(agent)
    agent.start()
    settings = Settings.load(section={'home': str(agent.home)})
    store = Store.from_settings(settings)
    started.append(store)
    wait_for(lambda: answers(api_port, '/health'), 60,
             message=f'scs-http to answer (see {agent.home}/logs/scs-http.log)')
    token = (agent.home / 'api-token').read_text().strip()
    enabled = min(args.enabled, args.nodes)
    make_nodes(agent, store, settings.agent_id, args.nodes, enabled)
    wait_for(lambda: [n['state'] for n in agent.rpc().scs.listNodes()].count('RUNNING')
             == enabled, 120, 0.2, message='the enabled nodes RUNNING')
    payload = answers(api_port, '/nodes')
    (tmp / 'nodes.json').write_bytes(payload)
    started.append(start_bare(bare_port, tmp / 'nodes.json', tmp / 'bare.out'))
    wait_for(lambda: answers(bare_port, '/ping'), 30, message=f'the bare app ({tmp}/bare.out)')
    cpu = CPU({'supervisord': agent.process.pid, 'bare': started[-1].pid,
               'scs-http': agent.rpc().supervisor.getProcessInfo('scs_http')['pid']})

    listed = json.loads(payload)
    states = {s: [n['state'] for n in listed].count(s) for s in {n['state'] for n in listed}}
    print(f'GET /nodes lists {len(listed)} nodes ({len(payload)} bytes of JSON): {enabled} enabled '
          f'(a solo worker each), {len(listed) - enabled} disabled (enabled: false, no worker); '
          f'states {states}; embedded broker, SQLite.')
    print(f'bare: GET /ping of a Falcon app ({len(json.dumps(BARE_BODY))} bytes of JSON), '
          f'waitress threads=8 like scs-http, in a process of its own.')
    print(f'Python client: a thread and a persistent HTTP/1.1 connection per client; '
          f'{args.duration:g}s per case in {args.slices} slices taken in turn, each after '
          f'{args.warmup:g}s of warm-up and once every client has had an answer; a request counts '
          f'when it ends in the slice. ratio: req/s over bare req/s at the same number of '
          f'clients (create+delete: POSTs plus DELETEs). server CPU: ms of CPU per request in '
          f'supervisord, scs-http or the bare app.')
    header()
    cases = {
        'bare': Case(get('/ping'), bare_port, ('bare',)),
        'nodes': Case(get('/nodes'), api_port, ('supervisord', 'scs-http')),
        'cycles': Case(Cycles(token, {'queues': ['bench'], 'app': APP, 'enabled': False}),
                       api_port, ('supervisord', 'scs-http')),
        'bytes': Case(get('/nodes-bytes'), bare_port, ('bare',)),
        'json': Case(get('/nodes-json'), bare_port, ('bare',)),
    }
    verdicts, bare_rates, python = {}, {}, {}
    for clients in clients_list:
        res = measure(cases, clients, args.slices, args.warmup, args.duration, cpu)
        base = bare_rates[clients] = res['bare'].rate()
        python[clients] = (base, res['nodes'].rate())
        verdicts[clients] = res['nodes'].rate() / base
        get_row(clients, 'bare GET /ping', res['bare'], base, cases['bare'])
        get_row(clients, f'GET /nodes ({len(listed)} nodes)', res['nodes'], base, cases['nodes'],
                f'; target >= {TARGET}: {"met" if verdicts[clients] >= TARGET else "NOT met"}')
        cycle_rows(clients, 'create+delete, disabled node', res['cycles'], base, '')
        get_row(clients, 'ceiling: same JSON, bytes (bare)', res['bytes'], base, cases['bytes'])
        get_row(clients, 'ceiling: same list, encoded (bare)', res['json'], base, cases['json'])
    result = enabled_cycles(api_port, token, args.enabled_cycles, cpu)
    cycle_rows(1, 'create+delete, enabled node', result, bare_rates.get(1),
               f' ({args.enabled_cycles} cycles: POST ?wait=consuming, a worker starts; DELETE, '
               f'it stops)')
    met = all(ratio >= TARGET for ratio in verdicts.values())
    print(f'target: GET /nodes at {len(listed)} nodes >= {TARGET} x bare req/s: '
          f'{"MET" if met else "NOT MET"} ('
          + ', '.join(f'{c} clients {r:.3f}' for c, r in verdicts.items()) + ')')
    client_check(clients_list, args.duration / args.slices, bare_port, api_port, python)
    breakdown(agent.home / 'supervisor.sock', store, settings, api_port, bare_port, args.duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--duration', type=float, default=12.0,
                        help='seconds measured per case and number of clients (default 12)')
    parser.add_argument('--warmup', type=float, default=0.5,
                        help='seconds of warm-up before each slice (default 0.5)')
    parser.add_argument('--slices', type=int, default=3,
                        help='slices the duration is cut into, cases taken in turn (default 3)')
    parser.add_argument('--nodes', type=int, default=100)
    parser.add_argument('--enabled', type=int, default=2,
                        help='how many of the nodes run a worker (default 2)')
    parser.add_argument('--clients', default='1,8,32')
    parser.add_argument('--enabled-cycles', type=int, default=3,
                        help='create+delete cycles of an enabled node, at one client (default 3)')
    parser.add_argument('--serve-bare', nargs=2, metavar=('PORT', 'NODES_JSON'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        return serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
    # Ctrl-C raises KeyboardInterrupt; SIGTERM and SIGHUP unwind through the clean-up as well.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    started: list = []
    with tempfile.TemporaryDirectory(prefix='scs-bench-') as tmp:
        try:
            benchmark(args, Path(tmp), started)
        except KeyboardInterrupt:
            print('interrupted: stopping what the benchmark started', file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            for thing in reversed(started):  # the bare app, the store, the agent
                try:
                    if isinstance(thing, subprocess.Popen):
                        stop_process(thing)
                    elif hasattr(thing, 'engine'):
                        thing.engine.dispose()
                    else:
                        thing.stop()
                except Exception as exc:  # go on stopping the others
                    print(f'clean-up of {thing!r} failed: {exc!r}', file=sys.stderr)


if __name__ == '__main__':
    main()
