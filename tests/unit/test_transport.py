from kombu import Connection

from scs_supervisor.transport import embedded_broker_url, register


def test_messages_round_trip_and_leave_no_temporary_files(tmp_path):
    register()
    url = embedded_broker_url(tmp_path / 'broker')
    with Connection(url) as connection:
        queue = connection.SimpleQueue('q1')
        queue.put({'n': 1})
        queue.put({'n': 2})
        # Messages put within the same millisecond may come in either order.
        got = sorted(queue.get(timeout=2).payload['n'] for _ in range(2))
        assert got == [1, 2]
        queue.close()
    data = tmp_path / 'broker' / 'data'
    assert not [p for p in data.iterdir() if p.name.endswith('.tmp')]


def test_a_message_still_being_written_is_not_read(tmp_path):
    register()
    url = embedded_broker_url(tmp_path / 'broker')
    with Connection(url) as connection:
        queue = connection.SimpleQueue('q2')
        # What a writer leaves while it writes: invisible to readers.
        (tmp_path / 'broker' / 'data' / '.half-written.tmp').write_bytes(b'{"bo')
        queue.put('whole')
        assert queue.get(timeout=2).payload == 'whole'
        queue.close()
