"""``scs-http``: serve the API with waitress (run by supervisord as ``[program:scs_http]``).

It binds to 127.0.0.1:8000 unless ``SCS_HTTP_BIND`` says otherwise; any other address than
loopback needs ``SCS_API_TOKEN``.  On loopback without one, the token kept in
``$SCS_HOME/api-token`` (created on first use, mode 0600) is used.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
from pathlib import Path

DEFAULT_BIND = '127.0.0.1:8000'


class BindError(ValueError):
    """The listen address is malformed, or public without a token."""


def parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(':')
    host = host.strip('[]')
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise BindError(f'--http takes ADDR:PORT, got {value!r}')
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != 'localhost':
            raise BindError(f'--http needs an IP address or localhost, got {host!r}') from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    return host == 'localhost' or ipaddress.ip_address(host).is_loopback


def token_file(home: Path) -> Path:
    return Path(home) / 'api-token'


def ensure_token(home: Path) -> str:
    """The agent's API token, created once (0600) in ``home``."""
    path = token_file(home)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(token + '\n')
        return token


def main() -> None:
    from waitress import serve

    from scs_supervisor.http.app import create_app
    from scs_supervisor.rpcclient import SupervisorClient
    from scs_supervisor.settings import Settings
    from scs_supervisor.store import Store

    settings = Settings.load()
    try:
        host, port = parse_bind(os.environ.get('SCS_HTTP_BIND') or DEFAULT_BIND)
        token = os.environ.get('SCS_API_TOKEN', '')
        if not token:
            if not is_loopback(host):
                raise BindError(f'refusing to listen on {host} without SCS_API_TOKEN')
            token = ensure_token(settings.home)
    except (BindError, OSError) as exc:
        print(f'scs-http: {exc}', file=sys.stderr)
        raise SystemExit(2) from None
    serverurl = (os.environ.get('SUPERVISOR_SERVER_URL')
                 or f'unix://{settings.home / "supervisor.sock"}')
    app = create_app(settings, Store.from_settings(settings), SupervisorClient(serverurl),
                     token)
    serve(app, host=host, port=port, threads=8, ident='scs', clear_untrusted_proxy_headers=True)
