"""The Falcon app, built from injected parts: settings, the store and a supervisord client.

Resources live beside this module (:mod:`.nodes`, :mod:`.catalog`, :mod:`.health`); this one
wires them and turns every known error into a JSON answer with a 4xx or 503 status.
"""

from __future__ import annotations

import xmlrpc.client

import falcon

from scs_supervisor import validation
from scs_supervisor.http.admin import AdminPage
from scs_supervisor.http.auth import BodyLimit, TokenAuth
from scs_supervisor.http.catalog import Brokers, Queues
from scs_supervisor.http.health import Health, Metrics
from scs_supervisor.http.listing import DropListingOnWrite, NodeListing
from scs_supervisor.http.nodes import Nodes, Operations
from scs_supervisor.http.openapi import OpenAPI
from scs_supervisor.store import Conflict, NotFound, Store, Unavailable

BODY_LIMIT = 64 * 1024


def create_app(settings, store: Store, supervisor, token: str) -> falcon.App:
    """The WSGI app; ``supervisor`` is a :class:`~scs_supervisor.rpcclient.SupervisorClient`."""
    listing = NodeListing(settings, store, supervisor)
    app = falcon.App(middleware=[BodyLimit(BODY_LIMIT), TokenAuth(token),
                                 DropListingOnWrite(listing)])
    app.req_options.strip_url_path_trailing_slash = True
    admin = AdminPage()
    app.add_route('/', admin)
    app.add_route('/admin/{file}', admin, suffix='asset')
    nodes = Nodes(settings, store, supervisor, listing)
    app.add_route('/nodes', nodes)
    app.add_route('/nodes/{name}', nodes, suffix='item')
    for action in ('disable', 'enable', 'restart', 'autoscale'):
        app.add_route(f'/nodes/{{name}}/{action}', nodes, suffix=action)
    app.add_route('/nodes/{name}/queues/{queue}', nodes, suffix='queue')
    app.add_route('/operations/{op_id}', Operations(supervisor))
    queues, brokers = Queues(store, supervisor), Brokers(store, supervisor)
    app.add_route('/queues', queues)
    app.add_route('/queues/{name}', queues, suffix='item')
    app.add_route('/brokers', brokers)
    app.add_route('/brokers/{name}', brokers, suffix='item')
    app.add_route('/health', Health(settings, store, supervisor))
    app.add_route('/metrics', Metrics(supervisor, listing))
    app.add_route('/openapi.json', OpenAPI())
    app.add_error_handler(validation.ValidationError, bad_request)
    app.add_error_handler(NotFound, not_found)
    app.add_error_handler(Conflict, conflict)
    app.add_error_handler(Unavailable, unavailable)
    app.add_error_handler(xmlrpc.client.Fault, supervisor_fault)
    app.add_error_handler(OSError, supervisor_down)
    return app


def bad_request(req, resp, exc, params):
    raise falcon.HTTPBadRequest(title='Invalid input', description=str(exc))


def not_found(req, resp, exc, params):
    raise falcon.HTTPNotFound(title='Not found', description=str(exc))


def conflict(req, resp, exc, params):
    raise falcon.HTTPConflict(title='Conflict', description=str(exc))


def unavailable(req, resp, exc, params):
    raise falcon.HTTPServiceUnavailable(title='Database unavailable', description=str(exc))


def supervisor_fault(req, resp, exc, params):
    if 'NOT_FOUND' in exc.faultString:
        raise falcon.HTTPNotFound(title='Not found', description=exc.faultString)
    raise falcon.HTTPServiceUnavailable(title='supervisord could not apply the change',
                                        description=exc.faultString)


def supervisor_down(req, resp, exc, params):
    raise falcon.HTTPServiceUnavailable(title='supervisord unavailable', description=str(exc))
