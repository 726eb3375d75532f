"""A tiny Celery app for a first look (``celery -A scs_supervisor.example worker``).

The broker comes from ``CELERY_BROKER_URL``, as for any app scs runs.  Set
``SCS_EXAMPLE_RESULT_BACKEND`` (for instance ``file:///tmp/results``) to keep task results.
"""

import os
import time

from celery import Celery, current_task

import scs_supervisor.transport  # noqa: F401  (registers scsfs:// for clients that import us)

app = Celery('scs_example')
app.conf.update(
    task_default_queue='default',
    result_backend=os.environ.get('SCS_EXAMPLE_RESULT_BACKEND') or None,
    broker_connection_retry_on_startup=True,
)


@app.task
def add(x, y):
    """Return x + y."""
    return x + y


@app.task
def whoami():
    """Return the nodename of the worker that ran the task."""
    return current_task.request.hostname


@app.task
def sleep(seconds):
    """Sleep for ``seconds`` (at most 60) and return them."""
    time.sleep(min(float(seconds), 60.0))
    return seconds
