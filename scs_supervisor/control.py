"""Celery remote control and broker probes, every call under a wall-clock deadline.

A control call can hang forever when the broker dies under an open pooled connection (kombu
retries publishes without limit), so each call runs in its own daemon thread and is abandoned
when its deadline passes; the client that hung is dropped and rebuilt.  Every broadcast names
its destinations, so it returns as soon as all of them have answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from celery import Celery
from kombu import Connection

from scs_supervisor import transport

transport.register()


class DeadlineExceeded(Exception):
    """A broker call did not finish in time."""


class BrokerUnavailable(Exception):
    """The broker could not be reached."""


def run_with_deadline(fn: Callable[[], Any], deadline: float, what: str) -> Any:
    """Run ``fn`` in a daemon thread; raise :class:`DeadlineExceeded` after ``deadline`` s."""
    box: dict[str, Any] = {}

    def target():
        try:
            box['result'] = fn()
        except BaseException as exc:  # handed back to the caller
            box['error'] = exc

    thread = threading.Thread(target=target, name=f'scs-{what}', daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise DeadlineExceeded(f'{what} did not finish within {deadline:.1f}s')
    if 'error' in box:
        raise box['error']
    return box.get('result')


def transport_options(url: str, timeout: float) -> dict:
    """Socket timeouts so that no connection of ours waits on a dead broker for long."""
    scheme = url.partition('://')[0]
    if scheme in ('redis', 'rediss', 'sentinel'):
        return {'socket_timeout': timeout, 'socket_connect_timeout': timeout}
    if scheme in ('amqp', 'amqps', 'pyamqp'):
        return {'connect_timeout': timeout, 'read_timeout': timeout, 'write_timeout': timeout}
    return {}


def probe_broker(url: str, timeout: float = 2.0) -> None:
    """Open a fresh connection to ``url``; raise :class:`BrokerUnavailable` if that fails."""
    def attempt():
        with Connection(url, connect_timeout=timeout,
                        transport_options=transport_options(url, timeout)) as connection:
            connection.ensure_connection(max_retries=0)
            connection.default_channel  # noqa: B018  (opening a channel is the real probe)

    try:
        run_with_deadline(attempt, timeout * 2 + 1, 'broker probe')
    except DeadlineExceeded as exc:
        raise BrokerUnavailable(str(exc)) from None
    except Exception as exc:
        raise BrokerUnavailable(f'{type(exc).__name__}: {exc}'.splitlines()[0]) from None


class Controller:
    """Remote control of the workers on one broker."""

    def __init__(self, url: str, timeout: float = 2.0):
        self.url = url
        self.timeout = timeout
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            app = Celery('scs-control', broker=self.url, set_as_current=False)
            app.conf.update(
                broker_connection_timeout=self.timeout,
                broker_connection_retry=False,
                broker_connection_max_retries=1,
                broker_transport_options=transport_options(self.url, self.timeout),
                broker_pool_limit=2,
            )
            self._app = app
        return self._app

    def reset(self) -> None:
        """Forget the client (after a call hung or the broker went away)."""
        app, self._app = self._app, None
        if app is not None:
            threading.Thread(target=app.close, daemon=True).start()

    def connect(self) -> None:
        """Open the pooled connection and channel the first broadcast would open."""
        def attempt(app):
            with app.pool.acquire(block=True, timeout=self.timeout) as connection:
                connection.ensure_connection(max_retries=0)
                connection.default_channel  # noqa: B018  (opens the channel)
            app.amqp.producer_pool  # noqa: B018  (built on first use)
        self._call('connect', attempt)

    def _call(self, what: str, fn: Callable[[Celery], Any]) -> Any:
        app = self.app
        try:
            # The reply window plus time to publish and connect.
            return run_with_deadline(lambda: fn(app), self.timeout * 3 + 2, what)
        except Exception:
            self.reset()
            raise

    # -- broadcasts: one round trip for any number of nodes ---------------------------------

    def ping(self, nodenames: Iterable[str]) -> set[str]:
        """The nodenames that answered a ping."""
        names = list(nodenames)
        if not names:
            return set()
        replies = self._call('ping', lambda app: app.control.ping(
            destination=names, timeout=self.timeout))
        return {name for reply in replies or [] for name, answer in reply.items()
                if answer == {'ok': 'pong'}}

    def active_queues(self, nodenames: Iterable[str]) -> dict[str, list[str]]:
        """Queue names each answering node consumes."""
        names = list(nodenames)
        if not names:
            return {}
        replies = self._call('active_queues', lambda app: app.control.inspect(
            destination=names, timeout=self.timeout).active_queues())
        return {name: [q['name'] for q in queues] for name, queues in (replies or {}).items()
                if isinstance(queues, list)}

    def autoscalers(self, nodenames: Iterable[str]) -> dict[str, dict | None]:
        """``stats()['autoscaler']`` of each answering node (None without ``--autoscale``)."""
        names = list(nodenames)
        if not names:
            return {}
        replies = self._call('stats', lambda app: app.control.inspect(
            destination=names, timeout=self.timeout).stats())
        return {name: (stats.get('autoscaler') or None) for name, stats in
                (replies or {}).items() if isinstance(stats, dict)}

    # -- commands to one node ----------------------------------------------------------------

    def add_consumer(self, nodename: str, queue: str, exchange: str | None,
                     exchange_type: str, routing_key: str | None, options: dict) -> str:
        return self._command('add_consumer', nodename, lambda app: app.control.add_consumer(
            queue, exchange=exchange, exchange_type=exchange_type, routing_key=routing_key,
            options=options, destination=[nodename], reply=True, timeout=self.timeout))

    def cancel_consumer(self, nodename: str, queue: str) -> str:
        return self._command('cancel_consumer', nodename, lambda app: app.control.
                             cancel_consumer(queue, destination=[nodename], reply=True,
                                             timeout=self.timeout))

    def autoscale(self, nodename: str, max_concurrency: int, min_concurrency: int) -> str:
        return self._command('autoscale', nodename, lambda app: app.control.autoscale(
            max_concurrency, min_concurrency, destination=[nodename], reply=True,
            timeout=self.timeout))

    def _command(self, what: str, nodename: str, fn) -> str:
        """Send one command and return the node's ``ok`` text; raise on error or silence."""
        replies = self._call(what, fn)
        for reply in replies or []:
            answer = reply.get(nodename)
            if isinstance(answer, dict) and 'ok' in answer:
                return str(answer['ok'])
            if isinstance(answer, dict) and 'error' in answer:
                raise RuntimeError(f'{what} on {nodename}: {answer["error"]}')
        raise DeadlineExceeded(f'{what}: no reply from {nodename}')
