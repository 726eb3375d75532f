"""The event-listener protocol, superlance style: a fake envelope in, the answer out."""

import io

import pytest

from scs_supervisor.listener import Listener, ProtocolError, parse_tokens


class FakeLoop:
    def __init__(self):
        self.triggers, self.ticks, self.exits, self.applied_revisions = 0, 0, [], []

    def trigger(self):
        self.triggers += 1

    def tick(self):
        self.ticks += 1

    def applied(self, revision, wake=True):
        self.applied_revisions.append((revision, wake))

    def note_exit(self, node):
        self.exits.append(node)


def envelope(eventname, payload):
    return (f'ver:3.0 server:supervisor serial:21 pool:scs_listener poolserial:10 '
            f'eventname:{eventname} len:{len(payload)}\n{payload}')


def run(*events):
    loop, stdout = FakeLoop(), io.StringIO()
    listener = Listener(loop, io.StringIO(''.join(envelope(*e) for e in events)), stdout)
    for _ in events:
        listener.runforever(test=True)
    return loop, stdout.getvalue()


def test_answers_ok_with_no_trailing_newline():
    loop, out = run(('TICK_5', 'when:1201063880'))
    assert out == 'READY\nRESULT 2\nOK'
    assert loop.ticks == 1


def test_unexpected_exit_of_a_node_is_noted():
    loop, out = run(('PROCESS_STATE_EXITED', 'processname:scs-w1 groupname:scs-w1 '
                     'from_state:RUNNING expected:0 pid:2766'),
                    ('PROCESS_STATE_EXITED', 'processname:scs-w2 groupname:scs-w2 '
                     'from_state:RUNNING expected:1 pid:2767'),
                    ('PROCESS_STATE_EXITED', 'processname:other groupname:other '
                     'from_state:RUNNING expected:0 pid:2768'))
    assert loop.exits == ['w1']
    assert out == 'READY\nRESULT 2\nOK' * 3


def test_running_node_triggers_a_cycle_but_hand_written_programs_do_not():
    loop, _ = run(('PROCESS_STATE_RUNNING', 'processname:scs-w1 groupname:scs-w1 '
                   'from_state:STARTING pid:1'),
                  ('PROCESS_STATE_RUNNING', 'processname:x groupname:x from_state:STARTING '
                   'pid:2'))
    assert loop.triggers == 1


def test_non_ascii_payload_is_read_by_characters():
    # supervisord's len counts characters; reading bytes would eat the next envelope.
    loop, out = run(('REMOTE_COMMUNICATION', 'type:scs\nhéllo wörld ✓'),
                    ('TICK_5', 'when:1'))
    assert (loop.triggers, loop.ticks) == (1, 1)
    assert out == 'READY\nRESULT 2\nOK' * 2


def test_a_sync_tells_which_revision_it_applied():
    loop, _ = run(('REMOTE_COMMUNICATION', 'type:scs\nrevision:42 reconfigured:scs-w1'),
                  ('REMOTE_COMMUNICATION', 'type:scs\nrevision:43 reconfigured:scs-w1 '
                                           'fastpath:verified'))
    # Woken to verify, unless the sync's fast path told the worker already.
    assert loop.applied_revisions == [(42, True), (43, False)] and loop.triggers == 0


def test_other_remote_communication_is_ignored():
    loop, _ = run(('REMOTE_COMMUNICATION', 'type:someone-else\ndata'))
    assert loop.triggers == 0


def test_garbage_header_is_a_protocol_error():
    listener = Listener(FakeLoop(), io.StringIO('hello world\n'), io.StringIO())
    with pytest.raises(ProtocolError):
        listener.runforever(test=True)


def test_closed_stdin_ends_the_listener():
    stdout = io.StringIO()
    Listener(FakeLoop(), io.StringIO(''), stdout).runforever()
    assert stdout.getvalue() == 'READY\n'


def test_tokens_keep_colons_in_values():
    assert parse_tokens('server:a:b len:3') == {'server': 'a:b', 'len': '3'}
