"""scs-supervisor: Celery workers described in SQL, run by supervisord."""

__version__ = '0.1.0'
