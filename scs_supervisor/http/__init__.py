"""The HTTP API: a Falcon app (:func:`create_app`) served by waitress as ``scs-http``."""

from scs_supervisor.http.app import create_app

__all__ = ['create_app']
