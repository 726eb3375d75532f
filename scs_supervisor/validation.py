"""What every field may hold: allowlists and limits, used by every entry point.

Pure functions.  Each ``check_*`` returns the normalised value or raises :class:`ValidationError`
naming the field and the rule, before anything is written anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from kombu.utils.url import parse_url

NODE_NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]{0,62}')
BROKER_NAME_RE = NODE_NAME_RE
APP_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_.]*)?')
DIRECTORY_RE = re.compile(r'/[A-Za-z0-9_./@+-]{0,1023}')
ENV_KEY_RE = re.compile(r'[A-Z_][A-Z0-9_]{0,127}')

QUEUE_NAME_MAX = 200
ENV_VALUE_MAX = 4096
ENV_MAX_KEYS = 64
QUEUES_MAX = 100
URL_MAX = 2048

POOLS = ('prefork', 'threads', 'solo', 'eventlet', 'gevent')
#: Pools whose size can change at run time (``--autoscale``); the others get ``-c max``.
AUTOSCALE_POOLS = ('prefork', 'eventlet', 'gevent')
LOGLEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
EXCHANGE_TYPES = ('direct', 'topic', 'fanout', 'headers')
BROKER_SCHEMES = ('amqp', 'amqps', 'pyamqp', 'redis', 'rediss', 'sentinel', 'sqs', 'scsfs')

#: Environment variables that change how programs are loaded, or that scs sets itself.
FORBIDDEN_ENV_PREFIXES = ('LD_', 'DYLD_', 'SUPERVISOR_', 'CELERY_BROKER_')
FORBIDDEN_ENV_KEYS = frozenset({
    'GCONV_PATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONINSPECT', 'PYTHONBREAKPOINT',
    'PYTHONEXECUTABLE', 'PYTHONUSERBASE', 'PERL5OPT', 'PERL5LIB', 'NODE_OPTIONS', 'BASH_ENV',
    'ENV', 'IFS', 'MALLOC_CHECK_', 'HOSTALIASES', 'LOCALDOMAIN', 'RES_OPTIONS', 'TMPDIR',
})

#: Characters no queue name may hold: list separators, quoting, config syntax, format escapes.
QUEUE_FORBIDDEN = set(',%"\'\\`;#[]=$')


class ValidationError(ValueError):
    """A value broke a rule.  ``field`` names the field, the message states the rule."""

    def __init__(self, field: str, rule: str):
        super().__init__(f'{field}: {rule}')
        self.field = field
        self.rule = rule


def _fullmatch(field: str, pattern: re.Pattern, value, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValidationError(field, rule)
    return value


def _printable_ascii(value: str) -> bool:
    return all(' ' <= ch <= '~' for ch in value)


def check_node_name(value) -> str:
    """Node names: ASCII letters, digits, ``_`` and ``-``, starting alphanumeric, 1-63 chars."""
    return _fullmatch('name', NODE_NAME_RE, value,
                      'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ '
                      '(ASCII letters, digits, _ and -)')


def check_broker_name(value, field: str = 'broker name') -> str:
    return _fullmatch(field, BROKER_NAME_RE, value,
                      'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$')


def check_queue_name(value, field: str = 'queue') -> str:
    """Queue names: printable, no whitespace, commas, quotes, ``%``, backslashes or syntax."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field, 'must be a non-empty string')
    if len(value) > QUEUE_NAME_MAX:
        raise ValidationError(field, f'must be at most {QUEUE_NAME_MAX} characters')
    if not _printable_ascii(value) or ' ' in value:
        raise ValidationError(field, 'must be printable ASCII without whitespace or '
                                     'control characters')
    bad = sorted(QUEUE_FORBIDDEN.intersection(value))
    if bad:
        raise ValidationError(field, f'must not contain {" ".join(bad)}')
    return value


def check_queue_names(values, field: str = 'queues') -> list[str]:
    """A list of queue names, or one comma-separated string; duplicates are dropped, order kept."""
    if isinstance(values, str):
        values = [v for v in values.split(',') if v.strip()] if values.strip() else []
    if not isinstance(values, list | tuple):
        raise ValidationError(field, 'must be a list of queue names')
    if len(values) > QUEUES_MAX:
        raise ValidationError(field, f'at most {QUEUES_MAX} queues')
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(check_queue_name(value, field), None)
    return list(seen)


def check_exchange(value, field: str = 'exchange') -> str:
    """An exchange name: empty (the default exchange) or what a queue name may be."""
    return value if value == '' else check_queue_name(value, field)


def check_exchange_type(value) -> str:
    return check_choice('exchange_type', value, EXCHANGE_TYPES)


def check_choice(field: str, value, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValidationError(field, f'must be one of {", ".join(choices)}')
    return value


def check_pool(value) -> str:
    return check_choice('pool', value, POOLS)


def check_loglevel(value) -> str:
    if isinstance(value, str):
        value = value.upper()
    return check_choice('loglevel', value, LOGLEVELS)


def check_int(field: str, value) -> int:
    if isinstance(value, bool):
        raise ValidationError(field, 'must be an integer')
    if isinstance(value, str) and re.fullmatch(r'[0-9]{1,6}', value):
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(field, 'must be an integer')
    return value


def check_timeout(value) -> int:
    """Seconds a caller may wait for an operation: 1 to 3600."""
    seconds = check_int('timeout', value)
    if not 1 <= seconds <= 3600:
        raise ValidationError('timeout', 'must be 1 to 3600 seconds')
    return seconds


def check_concurrency(min_value, max_value, cap: int) -> tuple[int, int]:
    """``1 <= min_concurrency <= max_concurrency <= cap``."""
    low = check_int('min_concurrency', min_value)
    high = check_int('max_concurrency', max_value)
    if low < 1:
        raise ValidationError('min_concurrency', 'must be at least 1')
    if high > cap:
        raise ValidationError('max_concurrency', f'must be at most {cap}')
    if low > high:
        raise ValidationError('min_concurrency',
                              f'must not exceed max_concurrency ({low} > {high})')
    return low, high


def check_app(value) -> str | None:
    """The ``-A`` value: a dotted module path, optionally ``:attribute``."""
    if value is None or value == '':
        return None
    if isinstance(value, str) and len(value) > 200:
        raise ValidationError('app', 'must be at most 200 characters')
    return _fullmatch('app', APP_RE, value,
                      'must be a dotted Python module path, optionally with :attribute')


def check_directory(value) -> str | None:
    """An absolute working directory of safe characters, without ``..`` components."""
    if value is None or value == '':
        return None
    _fullmatch('directory', DIRECTORY_RE, value,
               'must be an absolute path of A-Z a-z 0-9 _ . / @ + - (at most 1024 characters)')
    if '..' in value.split('/'):
        raise ValidationError('directory', 'must not contain .. components')
    return value


def check_env(value) -> dict[str, str]:
    """Extra environment variables for the worker."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError('env', 'must be an object of NAME: value')
    if len(value) > ENV_MAX_KEYS:
        raise ValidationError('env', f'at most {ENV_MAX_KEYS} variables')
    env = {}
    for key, val in value.items():
        _fullmatch('env', ENV_KEY_RE, key,
                   f'variable name {str(key)[:40]!r} must match ^[A-Z_][A-Z0-9_]*$')
        if key in FORBIDDEN_ENV_KEYS or key.startswith(FORBIDDEN_ENV_PREFIXES):
            raise ValidationError(f'env.{key}', 'may not be set: it changes how programs load '
                                                'or is managed by scs')
        env[key] = check_env_value(f'env.{key}', val)
    return dict(sorted(env.items()))


def check_env_value(field: str, value) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, 'must be a string')
    if len(value) > ENV_VALUE_MAX:
        raise ValidationError(field, f'must be at most {ENV_VALUE_MAX} characters')
    if not _printable_ascii(value):
        raise ValidationError(field, 'must be printable ASCII without control characters')
    if any(ch in value for ch in '"\'\\`'):
        raise ValidationError(field, 'must not contain quotes or backslashes')
    if re.search(r'\s[;#]', value) or value != value.strip():
        raise ValidationError(field, 'must not start or end with spaces, nor hold " ;" or " #"')
    return value


def check_broker_url(value, field: str = 'broker') -> str:
    """A broker URL kombu can parse, with a scheme from :data:`BROKER_SCHEMES`."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field, 'must be a broker URL')
    if len(value) > URL_MAX:
        raise ValidationError(field, f'must be at most {URL_MAX} characters')
    if not _printable_ascii(value) or any(ch in value for ch in ' "\'\\`'):
        raise ValidationError(field, 'must be printable ASCII without spaces, quotes or '
                                     'backslashes (percent-encode them)')
    scheme = value.partition('://')[0]
    if '://' not in value or scheme not in BROKER_SCHEMES:
        raise ValidationError(field, f'scheme must be one of {", ".join(BROKER_SCHEMES)}')
    try:
        parse_url(value)
    except Exception as exc:  # kombu raises several types for malformed URLs
        raise ValidationError(field, f'is not a valid URL ({type(exc).__name__})') from None
    return value


#: Options a queue declaration may carry (kombu ``Queue`` arguments) and the JSON type of each.
QUEUE_OPTIONS = {
    'durable': bool, 'exclusive': bool, 'auto_delete': bool, 'no_ack': bool,
    'expires': (int, float), 'message_ttl': (int, float), 'max_length': int,
    'max_length_bytes': int, 'max_priority': int,
    'queue_arguments': Mapping, 'binding_arguments': Mapping, 'consumer_arguments': Mapping,
}
ROUTING_KEY_RE = re.compile(r'[!-~]{0,255}')


def check_routing_key(value) -> str:
    """A routing key (it never reaches a config file): printable ASCII, no whitespace."""
    return _fullmatch('routing_key', ROUTING_KEY_RE, value,
                      'must be at most 255 printable ASCII characters without whitespace')


def _plain_json(value, depth: int = 0) -> bool:
    """Strings, numbers, booleans and null, in objects and lists at most three levels deep."""
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= 1024 and _printable_ascii(value)
    if depth >= 3:
        return False
    if isinstance(value, list):
        return len(value) <= 64 and all(_plain_json(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return len(value) <= 64 and all(
            isinstance(k, str) and 0 < len(k) <= 255 and _printable_ascii(k)
            and _plain_json(item, depth + 1) for k, item in value.items())
    return False


def check_queue_options(value) -> dict:
    """Queue options from :data:`QUEUE_OPTIONS`, each of its type; arguments as plain JSON."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError('options', 'must be an object')
    for key, item in value.items():
        kind = QUEUE_OPTIONS.get(key)
        if kind is None:
            raise ValidationError('options', f'unknown option {str(key)[:40]!r} (known: '
                                             f'{", ".join(QUEUE_OPTIONS)})')
        if (not isinstance(item, kind) or (kind is not bool and isinstance(item, bool))
                or not _plain_json(item)):
            raise ValidationError(f'options.{key}', 'has the wrong type' if kind is not Mapping
                                  else 'must be an object of plain JSON values')
        if kind is not bool and kind is not Mapping and item < 0:
            raise ValidationError(f'options.{key}', 'must not be negative')
    return dict(value)


#: Queue fields a caller may set, and their defaults on create (``None``: the queue's name).
QUEUE_DEFAULTS = {'exchange': None, 'exchange_type': 'direct', 'routing_key': None,
                  'options': {}}


def check_queue_fields(fields: Mapping) -> dict:
    """Validate a queue declaration (see :data:`QUEUE_DEFAULTS`); return it normalised."""
    unknown = sorted(set(fields) - set(QUEUE_DEFAULTS))
    if unknown:
        raise ValidationError(unknown[0], f'unknown field (known: name, '
                                          f'{", ".join(QUEUE_DEFAULTS)})')
    return {
        'exchange': None if fields['exchange'] is None else check_exchange(fields['exchange']),
        'exchange_type': check_exchange_type(fields['exchange_type']),
        'routing_key': (None if fields['routing_key'] is None
                        else check_routing_key(fields['routing_key'])),
        'options': check_queue_options(fields['options']),
    }


#: Node fields a caller may set, and their defaults on create.
NODE_DEFAULTS = {
    'queues': ['celery'],
    'min_concurrency': 1,
    'max_concurrency': 4,
    'pool': 'prefork',
    'app': None,
    'broker': None,
    'loglevel': 'INFO',
    'directory': None,
    'env': {},
    'enabled': True,
}


def check_node_fields(fields: Mapping, cap: int) -> dict:
    """Validate a complete set of node fields (see :data:`NODE_DEFAULTS`); return them normalised.

    ``broker`` is left as given (a broker name or URL) apart from its syntax: the store resolves it.
    """
    unknown = sorted(set(fields) - set(NODE_DEFAULTS))
    if unknown:
        raise ValidationError(unknown[0], f'unknown field (known: {", ".join(NODE_DEFAULTS)})')
    out = dict(fields)
    out['queues'] = check_queue_names(fields['queues'])
    if not out['queues']:
        raise ValidationError('queues', 'a node must consume at least one queue')
    out['min_concurrency'], out['max_concurrency'] = check_concurrency(
        fields['min_concurrency'], fields['max_concurrency'], cap)
    out['pool'] = check_pool(fields['pool'])
    out['app'] = check_app(fields['app'])
    out['loglevel'] = check_loglevel(fields['loglevel'])
    out['directory'] = check_directory(fields['directory'])
    out['env'] = check_env(fields['env'])
    broker = fields['broker']
    if broker in (None, ''):
        out['broker'] = None
    elif isinstance(broker, str) and '://' in broker:
        out['broker'] = check_broker_url(broker)
    else:
        out['broker'] = check_broker_name(broker)
    if not isinstance(fields['enabled'], bool):
        raise ValidationError('enabled', 'must be true or false')
    return out
