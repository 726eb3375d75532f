"""The ``celery scs`` subcommand.

Celery imports every ``celery.commands`` entry point when its command line starts; importing
this module registers the ``scsfs://`` transport, so ``celery -A any_app worker`` and
``celery inspect ...`` understand the embedded broker's URL with no change to the user's app.
"""

import click

from scs_supervisor import transport


@click.command(name='scs')
def scs():
    """Show how this celery command reaches scs-supervisor's embedded broker."""
    click.echo(f'{transport.SCHEME}:// -> {transport.__name__}:Transport '
               f'(kombu filesystem transport, polling every {transport.POLLING_INTERVAL}s)')
