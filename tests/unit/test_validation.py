import pytest

from scs_supervisor import validation as v

#: Strings that must never reach a supervisord config file through any name-like field.
INJECTIONS = [
    'a\nb', 'a\rb', '[program:x]', 'x]', 'a%b', '%(here)s', 'a ;b', 'a #b', 'a"b', "a'b",
    'a\\b', 'a\x00b', 'a\tb', 'nоde',  # Cyrillic o
    'ｎode',  # fullwidth n
    'a' * 10_000, '', ' ', 'a b', 'a,b', 'a=b', '`id`', '$(id)', 'a\x7fb', 'a\u2028b',
]


@pytest.mark.parametrize('value', INJECTIONS)
def test_node_name_rejects_injection(value):
    with pytest.raises(v.ValidationError) as info:
        v.check_node_name(value)
    assert info.value.field == 'name'


@pytest.mark.parametrize('value', ['a', 'worker-1', 'A_b-9', 'x' * 63])
def test_node_name_accepts(value):
    assert v.check_node_name(value) == value


def test_node_name_length_limit():
    with pytest.raises(v.ValidationError):
        v.check_node_name('x' * 64)
    with pytest.raises(v.ValidationError):
        v.check_node_name('-leading')


@pytest.mark.parametrize('value', [i for i in INJECTIONS if i not in ('nоde', 'ｎode')])
def test_queue_name_rejects_injection(value):
    with pytest.raises(v.ValidationError):
        v.check_queue_name(value)


@pytest.mark.parametrize('value', ['nоde', 'ｎode'])
def test_queue_name_rejects_non_ascii_lookalikes(value):
    with pytest.raises(v.ValidationError, match='printable ASCII'):
        v.check_queue_name(value)


@pytest.mark.parametrize('value', ['default', 'celery', 'emails.high', 'a:b', 'q-1_2', 'x' * 200])
def test_queue_name_accepts(value):
    assert v.check_queue_name(value) == value


def test_queue_list_from_string_keeps_order_and_drops_duplicates():
    assert v.check_queue_names('b,a,b') == ['b', 'a']
    with pytest.raises(v.ValidationError):
        v.check_queue_names(['ok', 'bad queue'])


@pytest.mark.parametrize('low,high,message', [
    (0, 1, 'min_concurrency: must be at least 1'),
    (2, 1, 'min_concurrency: must not exceed max_concurrency'),
    (1, 65, 'max_concurrency: must be at most 64'),
    ('x', 1, 'min_concurrency: must be an integer'),
    (True, 1, 'min_concurrency: must be an integer'),
])
def test_concurrency_rules(low, high, message):
    with pytest.raises(v.ValidationError, match=message):
        v.check_concurrency(low, high, 64)


def test_concurrency_accepts_numeric_strings():
    assert v.check_concurrency('2', '8', 64) == (2, 8)


@pytest.mark.parametrize('field,check,value', [
    ('pool', v.check_pool, 'fork'),
    ('loglevel', v.check_loglevel, 'verbose'),
    ('app', v.check_app, 'my app'),
    ('app', v.check_app, 'a;b'),
    ('app', v.check_app, 'a\nb'),
    ('directory', v.check_directory, 'relative/path'),
    ('directory', v.check_directory, '/tmp/../etc'),
    ('directory', v.check_directory, '/tmp/a b'),
    ('directory', v.check_directory, '/tmp/%(here)s'),
])
def test_field_rules_name_the_field(field, check, value):
    with pytest.raises(v.ValidationError) as info:
        check(value)
    assert info.value.field == field
    assert str(info.value).startswith(field + ':')


@pytest.mark.parametrize('env,field', [
    ({'LD_PRELOAD': '/tmp/x.so'}, 'env.LD_PRELOAD'),
    ({'LD_LIBRARY_PATH': '/tmp'}, 'env.LD_LIBRARY_PATH'),
    ({'DYLD_INSERT_LIBRARIES': 'x'}, 'env.DYLD_INSERT_LIBRARIES'),
    ({'PYTHONSTARTUP': '/tmp/x.py'}, 'env.PYTHONSTARTUP'),
    ({'CELERY_BROKER_URL': 'redis://x'}, 'env.CELERY_BROKER_URL'),
    ({'lower': 'x'}, 'env'),
    ({'A-B': 'x'}, 'env'),
    ({'A': 'x"y'}, 'env.A'),
    ({'A': "x'y"}, 'env.A'),
    ({'A': 'x\\y'}, 'env.A'),
    ({'A': 'x\ny'}, 'env.A'),
    ({'A': 'x ;y'}, 'env.A'),
    ({'A': 'x #y'}, 'env.A'),
    ({'A': ' x'}, 'env.A'),
    ({'A': 'é'}, 'env.A'),
    ({'A': 1}, 'env.A'),
])
def test_env_rules(env, field):
    with pytest.raises(v.ValidationError) as info:
        v.check_env(env)
    assert info.value.field == field


def test_env_accepts_and_sorts():
    assert v.check_env({'B': 'x y', 'A': '100%', 'PATH': '/usr/bin:/bin'}) == {
        'A': '100%', 'B': 'x y', 'PATH': '/usr/bin:/bin'}


@pytest.mark.parametrize('url', [
    'amqp://guest:guest@127.0.0.1:5672//', 'redis://127.0.0.1:6379/0',
    'rediss://:p%40ss@h:6380/1', 'scsfs://localhost//var/lib/scs/broker',
])
def test_broker_url_accepts(url):
    assert v.check_broker_url(url) == url


@pytest.mark.parametrize('url', [
    'http://example.com', 'file:///etc/passwd', 'memory://', 'redis://h/0"x', 'redis://h /0',
    'redis://h/0\n[program:x]', 'amqp', '', 'redis://h\\x',
])
def test_broker_url_rejects(url):
    with pytest.raises(v.ValidationError) as info:
        v.check_broker_url(url)
    assert info.value.field == 'broker'


def test_node_fields_unknown_field():
    with pytest.raises(v.ValidationError, match='command: unknown field'):
        v.check_node_fields({**v.NODE_DEFAULTS, 'command': 'rm -rf /'}, 64)


def test_node_fields_need_a_queue():
    with pytest.raises(v.ValidationError, match='queues: a node must consume'):
        v.check_node_fields({**v.NODE_DEFAULTS, 'queues': []}, 64)


def test_node_fields_normalise():
    fields = v.check_node_fields({**v.NODE_DEFAULTS, 'loglevel': 'debug', 'queues': 'a,b',
                                  'broker': 'amqp://h//', 'app': ''}, 64)
    assert fields['loglevel'] == 'DEBUG'
    assert fields['queues'] == ['a', 'b']
    assert fields['app'] is None
