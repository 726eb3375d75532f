"""Celery remote control and broker probes, every call under a wall-clock deadline.

Celery's ``app.control`` opens a reply queue for every call: it declares the exchange, the
queue and the binding, consumes, waits, cancels, and the broker deletes the queue; that is five
broker round trips besides the one that counts.  :class:`Controller` keeps one reply queue
consumed for its whole life instead and speaks the same remote-control protocol (kombu's
pidbox: a command on the ``celery.pidbox`` fanout exchange naming its destinations, a ticket,
and where to reply), so a call costs one round trip: ``active_queues`` of one worker takes
1.3 ms on a local RabbitMQ where ``app.control`` takes 6.5 ms.

A control call can hang forever when the broker dies under an open connection, so every call
waits on a deadline and never on a socket: the sending and the reading are done by the
controller's own threads, and a controller whose thread failed or overran is dropped whole and
rebuilt by the next call.  Every broadcast names its destinations, so it returns as soon as
all of them have answered.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from celery import Celery
from kombu import Connection, Consumer, Producer

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
    """Remote control of the workers on one broker, over connections it keeps open."""

    def __init__(self, url: str, timeout: float = 2.0):
        self.url = url
        #: The reply window of a broadcast; connecting and sending have as long again.
        self.timeout = timeout
        self._lock = threading.Lock()
        self._link: _Link | None = None

    def reset(self) -> None:
        """Drop the connections (after a call failed or overran, or the broker went away)."""
        self._drop(self._link)

    def _drop(self, link: _Link | None) -> None:
        """Close ``link``, and forget it unless another call has replaced it already."""
        with self._lock:
            if self._link is link:
                self._link = None
        if link is not None:
            link.close()

    def connect(self) -> None:
        """Open the connections and the reply queue the first call would open."""
        self._ready_link()

    def _ready_link(self) -> _Link:
        with self._lock:
            if self._link is None or self._link.failed:
                if self._link is not None:
                    self._link.close()
                self._link = _Link(self.url, self.timeout)
            link = self._link
        try:
            link.wait_ready(self.timeout * 2 + 1)
        except Exception:
            self._drop(link)
            raise
        return link

    def _broadcast(self, command: str, arguments: dict, names: list[str],
                   timeout: float | None = None) -> dict[str, Any]:
        """Send ``command`` to ``names``; return each answer that came within the reply window
        (``timeout``, or the client's), by node name."""
        link = self._ready_link()
        try:
            return link.call(command, arguments, names, timeout or self.timeout)
        except Exception:
            self._drop(link)
            raise

    # -- broadcasts: one round trip for any number of nodes ---------------------------------

    def ping(self, nodenames: Iterable[str], timeout: float | None = None) -> set[str]:
        """The nodenames that answered a ping."""
        names = list(nodenames)
        if not names:
            return set()
        replies = self._broadcast('ping', {}, names, timeout)
        return {name for name, answer in replies.items() if answer == {'ok': 'pong'}}

    def active_queues(self, nodenames: Iterable[str],
                      timeout: float | None = None) -> dict[str, list[str]]:
        """Queue names each answering node consumes."""
        names = list(nodenames)
        if not names:
            return {}
        replies = self._broadcast('active_queues', {}, names, timeout)
        return {name: [q['name'] for q in queues] for name, queues in replies.items()
                if isinstance(queues, list)}

    def autoscalers(self, nodenames: Iterable[str],
                    timeout: float | None = None) -> dict[str, dict | None]:
        """``stats()['autoscaler']`` of each answering node (None without ``--autoscale``)."""
        names = list(nodenames)
        if not names:
            return {}
        replies = self._broadcast('stats', {}, names, timeout)
        return {name: (stats.get('autoscaler') or None) for name, stats in replies.items()
                if isinstance(stats, dict)}

    # -- commands to one node ----------------------------------------------------------------

    def add_consumer(self, nodename: str, queue: str, exchange: str | None,
                     exchange_type: str, routing_key: str | None, options: dict) -> str:
        return self._command('add_consumer', nodename, {
            'queue': queue, 'exchange': exchange, 'exchange_type': exchange_type,
            'routing_key': routing_key, **options})

    def cancel_consumer(self, nodename: str, queue: str) -> str:
        return self._command('cancel_consumer', nodename, {'queue': queue})

    def autoscale(self, nodename: str, max_concurrency: int, min_concurrency: int) -> str:
        return self._command('autoscale', nodename, {'max': max_concurrency,
                                                     'min': min_concurrency})

    def _command(self, what: str, nodename: str, arguments: dict) -> str:
        """Send one command and return the node's ``ok`` text; raise on error or silence."""
        answer = self._broadcast(what, arguments, [nodename]).get(nodename)
        if isinstance(answer, dict) and 'ok' in answer:
            return str(answer['ok'])
        if isinstance(answer, dict) and 'error' in answer:
            raise RuntimeError(f'{what} on {nodename}: {answer["error"]}')
        raise DeadlineExceeded(f'{what}: no reply from {nodename}')


class Controllers:
    """A process's control clients, one per broker, shared by its threads."""

    def __init__(self, timeout: float = 2.0, make: Callable[[str, float], Any] = Controller):
        self.timeout = timeout
        self._make = make
        self._lock = threading.Lock()
        self._by_url: dict[str, Controller] = {}

    def __call__(self, url: str) -> Controller:
        with self._lock:
            control = self._by_url.get(url)
            if control is None:
                control = self._by_url[url] = self._make(url, self.timeout)
            return control

    def __contains__(self, url: str) -> bool:
        return url in self._by_url

    def drop(self, url: str) -> None:
        """Forget the client of ``url`` and close its connections (its broker went away)."""
        with self._lock:
            control = self._by_url.pop(url, None)
        if control is not None:
            control.reset()

    def close(self) -> None:
        for url in list(self._by_url):
            self.drop(url)


@dataclasses.dataclass
class _Call:
    """One broadcast waiting for its answers."""

    names: frozenset[str]
    answers: dict[str, Any] = dataclasses.field(default_factory=dict)
    sent: threading.Event = dataclasses.field(default_factory=threading.Event)
    answered: threading.Event = dataclasses.field(default_factory=threading.Event)
    error: BaseException | None = None


class _Link:
    """Two connections to one broker and the threads that own them.

    The reader consumes this link's reply queue and hands each answer to the call whose ticket
    it carries; the sender publishes the commands, in order.  A kombu connection belongs to
    one thread, and neither thread ever waits for a caller: callers wait on events.  Once
    ``failed``, a link is closed and replaced.
    """

    def __init__(self, url: str, timeout: float):
        self.timeout = timeout
        self.failed: Exception | None = None
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._calls: dict[str, _Call] = {}
        self._calls_lock = threading.Lock()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        app = Celery('scs-control', broker=url, set_as_current=False)
        app.conf.update(broker_connection_timeout=timeout, broker_connection_retry=False,
                        broker_transport_options=transport_options(url, timeout))
        self.mailbox = app.control.mailbox
        self._connection = app.connection_for_write  # a new connection each call
        self._reply_to: dict[str, str] | None = None
        self._sender_ready = threading.Event()
        for work, name in ((self._read, 'scs-control-reader'),
                           (self._send, 'scs-control-sender')):
            threading.Thread(target=self._own_connection, args=(work,), name=name,
                             daemon=True).start()

    def wait_ready(self, deadline: float) -> None:
        began = time.monotonic()
        ready = (self._ready.wait(deadline)
                 and self._sender_ready.wait(max(0.0, deadline - (time.monotonic() - began))))
        if self.failed is not None:
            raise self.failed
        if not ready:
            raise DeadlineExceeded(f'connecting did not finish within {deadline:.1f}s')

    def call(self, command: str, arguments: dict, names: list[str],
             window: float) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        call = _Call(frozenset(names))
        with self._calls_lock:
            if self.failed is not None:
                raise self.failed
            self._calls[ticket] = call
        try:
            self._outbox.put((ticket, command, arguments, names, window))
            if not call.sent.wait(self.timeout + 1):
                raise DeadlineExceeded(f'{command}: sending did not finish within '
                                       f'{self.timeout + 1:.1f}s')
            if call.error is None:
                call.answered.wait(window)
            if call.error is not None:
                raise call.error
            with self._calls_lock:
                return dict(call.answers)
        finally:
            with self._calls_lock:
                self._calls.pop(ticket, None)

    def close(self) -> None:
        self._closed.set()
        self._outbox.put(None)

    def _fail(self, exc: Exception) -> None:
        """Fail the link and every call waiting on it."""
        with self._calls_lock:
            self.failed = self.failed or exc
            calls = list(self._calls.values())
        for call in calls:
            call.error = self.failed
            call.sent.set()
            call.answered.set()
        self._ready.set()
        self._sender_ready.set()

    def _own_connection(self, work: Callable[[Connection, Any], None]) -> None:
        """A thread's life: open its connection, ``work(connection, channel)`` on it until
        the link closes; any error fails the link."""
        try:
            with self._connection() as connection:
                connection.ensure_connection(max_retries=0)
                work(connection, connection.default_channel)
        except Exception as exc:
            self._fail(exc)

    def _read(self, connection: Connection, channel) -> None:
        reply_queue = self.mailbox(connection).get_reply_queue()
        consumer = Consumer(channel, [reply_queue], accept=self.mailbox.accept, no_ack=True,
                            callbacks=[self._on_answer])
        consumer.consume()
        self._reply_to = {'exchange': self.mailbox.reply_exchange.name,
                          'routing_key': reply_queue.routing_key}
        self._ready.set()
        while not self._closed.is_set():
            try:
                connection.drain_events(timeout=1)
            except TimeoutError:
                pass
        try:  # an orderly close: virtual transports keep reply queues until deleted
            channel.after_reply_message_received(reply_queue.name)
        except Exception:  # noqa: S110  (AMQP deletes it with its last consumer)
            pass

    def _on_answer(self, body: Any, message) -> None:
        with self._calls_lock:
            call = self._calls.get(message.headers.get('ticket'))
            if call is None or not isinstance(body, dict):
                return  # a late answer to a call that gave up
            call.answers.update(body)
            if call.names <= call.answers.keys():
                call.answered.set()

    def _send(self, connection: Connection, channel) -> None:
        producer = Producer(channel, exchange=self.mailbox.exchange,
                            serializer=self.mailbox.serializer)
        self.mailbox.exchange(channel).declare()
        self._sender_ready.set()
        while (job := self._outbox.get()) is not None:
            self._publish(producer, *job)

    def _publish(self, producer: Producer, ticket: str, command: str, arguments: dict,
                 names: list[str], window: float) -> None:
        with self._calls_lock:
            call = self._calls.get(ticket)
        if call is None:
            return  # the caller gave up before its turn
        producer.publish(
            {'method': command, 'arguments': arguments, 'destination': names,
             'pattern': None, 'matcher': None, 'ticket': ticket, 'reply_to': self._reply_to},
            headers={'clock': self.mailbox.clock.forward(),
                     'expires': time.time() + window},
            retry=False)
        call.sent.set()
