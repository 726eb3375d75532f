"""The embedded broker: kombu's filesystem transport, addressed by one self-contained URL.

kombu's filesystem transport takes its folders only from transport options, which a worker
started as ``celery -A user_app worker`` never sees.  ``scsfs:////abs/dir`` carries the folder in
the URL instead: the virtual host is the broker directory, messages live in ``<dir>/data`` and
broadcasts (remote control) in ``<dir>/control``.  The alias is registered when this module is
imported, which the ``celery`` command does through the ``celery.commands`` entry point.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from urllib.parse import quote

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = 'scsfs'

#: Seconds between polls of the broker folders: 0.1 s keeps a control round trip near 0.1 s
#: without making dozens of idle workers spin.
POLLING_INTERVAL = 0.1


def embedded_broker_url(directory: Path) -> str:
    """The ``scsfs://`` URL of the broker kept in ``directory``."""
    return f'{SCHEME}://localhost/{quote(str(Path(directory).absolute()))}'


def folder_options(directory: str) -> dict[str, str]:
    """Transport options that put every folder of the filesystem transport under ``directory``."""
    return {
        'data_folder_in': os.path.join(directory, 'data'),
        'data_folder_out': os.path.join(directory, 'data'),
        'control_folder': os.path.join(directory, 'control'),
        'processed_folder': os.path.join(directory, 'processed'),
    }


class Channel(filesystem.Channel):
    """A filesystem channel whose folders come from the connection's virtual host."""

    @property
    def transport_options(self):
        directory = self.connection.client.virtual_host
        if not directory or not directory.startswith('/'):
            raise ValueError(f'{SCHEME}:// needs an absolute broker directory, '
                             f'like {SCHEME}:////var/lib/scs/broker')
        options = folder_options(directory)
        options.update(self.connection.client.transport_options)
        return options

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for folder in (self.data_folder_in, self.control_folder):
            os.makedirs(folder, mode=0o700, exist_ok=True)

    def _put(self, queue, payload, **kwargs):
        """Put a message on ``queue`` atomically.

        kombu's filesystem transport creates the message file, then writes it; a reader in
        another process can take the file in between and die on an empty message.  Here the
        message is written under a name no reader looks at (``.<uuid>.tmp``), then renamed.
        """
        name = f'{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg'
        tmp = os.path.join(self.data_folder_out, f'.{uuid.uuid4()}.tmp')
        try:
            with open(tmp, 'wb') as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(tmp, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f'cannot add a message to {self.data_folder_out}') from exc


class Transport(filesystem.Transport):
    """kombu's filesystem transport with folders taken from the URL."""

    Channel = Channel
    polling_interval = POLLING_INTERVAL
    driver_name = SCHEME


def register() -> None:
    """Make ``scsfs://`` URLs resolve to :class:`Transport` in this process."""
    TRANSPORT_ALIASES.setdefault(SCHEME, f'{__name__}:Transport')


register()
