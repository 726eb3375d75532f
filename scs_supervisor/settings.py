"""One settings object, read from the environment or from a supervisord config section.

Every entry point (``scs-agent``, the ``[rpcinterface:scs]`` extension, the ``[ctlplugin:scs]``
plugin) builds a :class:`Settings` once and hands it to whatever needs it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from scs_supervisor.reconcile import Policy

#: Environment variable -> settings field.  Section keys in supervisord use the field names.
ENVIRONMENT = {
    'SCS_HOME': 'home',
    'SCS_DATABASE_URL': 'database_url',
    'SCS_BROKER_URL': 'broker_url',
    'SCS_AGENT_ID': 'agent_id',
    'SCS_CELERY_BIN': 'celery_bin',
    'SCS_CONCURRENCY_CAP': 'concurrency_cap',
    'SCS_STOPWAITSECS': 'stopwaitsecs',
    'SCS_STARTSECS': 'startsecs',
    'SCS_TICK_INTERVAL': 'tick_interval',
    'SCS_MISSED_PINGS': 'missed_pings',
    'SCS_WAIT_AFTER_BROKER_REVIVED': 'wait_after_broker_revived',
    'SCS_RESTART_LIMIT': 'restart_limit',
    'SCS_RESTART_WINDOW': 'restart_window',
    'SCS_CONTROL_TIMEOUT': 'control_timeout',
}

INT_FIELDS = ('concurrency_cap', 'stopwaitsecs', 'startsecs', 'missed_pings', 'restart_limit')
FLOAT_FIELDS = ('tick_interval', 'wait_after_broker_revived', 'restart_window',
                'control_timeout')


class SettingsError(ValueError):
    """A setting has a value we cannot use."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where scs keeps its state and how it runs workers.

    ``database_url`` defaults to SQLite at ``$SCS_HOME/scs.db``; ``broker_url`` defaults to the
    embedded filesystem broker under ``$SCS_HOME/broker`` (see :mod:`scs_supervisor.transport`).
    """

    home: Path
    database_url: str
    broker_url: str
    agent_id: str
    celery_bin: str
    concurrency_cap: int = 64
    stopwaitsecs: int = 600
    startsecs: int = 1
    #: The supervisor loop: seconds between ticks, pings a worker may miss before it is
    #: restarted, seconds to wait after a broker comes back, restarts allowed per window.
    tick_interval: float = 5.0
    missed_pings: int = Policy.missed_pings
    wait_after_broker_revived: float = Policy.wait_after_broker_revived
    restart_limit: int = Policy.restart_limit
    restart_window: float = Policy.restart_window
    control_timeout: float = 2.0

    @property
    def programs_dir(self) -> Path:
        """The include directory that holds one ``scs-<name>.conf`` per enabled node."""
        return self.home / 'programs'

    @property
    def logs_dir(self) -> Path:
        return self.home / 'logs'

    @property
    def broker_dir(self) -> Path:
        return self.home / 'broker'

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None,
             section: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables, overridden by config-section keys."""
        environ = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for env_name, field in ENVIRONMENT.items():
            if environ.get(env_name):
                values[field] = environ[env_name]
        for key, value in (section or {}).items():
            if key not in ENVIRONMENT.values():
                raise SettingsError(f'unknown scs setting {key!r}')
            if value != '':
                values[key] = value
        return cls.from_values(values)

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> Settings:
        """Fill in defaults for whatever ``values`` leaves out."""
        home = Path(values.get('home') or './var').expanduser().absolute()
        numbers = {}
        for field in INT_FIELDS + FLOAT_FIELDS:
            if field in values:
                kind = int if field in INT_FIELDS else float
                try:
                    numbers[field] = kind(values[field])
                except ValueError:
                    noun = 'an integer' if kind is int else 'a number'
                    raise SettingsError(f'{field} must be {noun}, got {values[field]!r}') \
                        from None
                if not 0 < numbers[field] < 1e6:
                    raise SettingsError(f'{field} must be positive')
        from scs_supervisor.transport import embedded_broker_url

        return cls(
            home=home,
            database_url=values.get('database_url') or f'sqlite:///{home / "scs.db"}',
            broker_url=values.get('broker_url') or embedded_broker_url(home / 'broker'),
            agent_id=values.get('agent_id') or socket.gethostname(),
            celery_bin=values.get('celery_bin') or str(Path(sys.executable).with_name('celery')),
            **numbers,
        )

    def as_section(self) -> dict[str, str]:
        """The settings as ``[rpcinterface:scs]`` / ``[ctlplugin:scs]`` keys."""
        return {field: str(getattr(self, field)) for field in ENVIRONMENT.values()}
