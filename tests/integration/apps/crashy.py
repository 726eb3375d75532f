"""A Celery app whose worker dies a few seconds after it is ready (a crash loop)."""

import os
import threading

from celery import Celery
from celery.signals import worker_ready

app = Celery('crashy')


@worker_ready.connect
def crash_soon(**_):
    threading.Timer(float(os.environ.get('CRASH_AFTER', '3')), os._exit, args=(3,)).start()
