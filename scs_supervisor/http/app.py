"""The Falcon app: nodes, operations and health, built from injected parts.

Writes go to the database first, then supervisord applies them (``scs.sync``), so a change
answers once it is applied.  ``?wait=consuming`` also waits until the workers consume exactly
their queues (``timeout``, 504 with what was seen when it runs out); ``?async=true`` answers
202 with an operation to poll at ``/operations/{id}``.
"""

from __future__ import annotations

import xmlrpc.client

import falcon

from scs_supervisor import validation
from scs_supervisor.http.admin import AdminPage
from scs_supervisor.http.auth import BodyLimit, TokenAuth
from scs_supervisor.store import Conflict, NotFound, Store, Unavailable

BODY_LIMIT = 64 * 1024
#: Fields a client may send for a node (the same names ``scs show --json`` uses).
NODE_FIELDS = tuple(validation.NODE_DEFAULTS)


def create_app(settings, store: Store, supervisor, token: str) -> falcon.App:
    """The WSGI app; ``supervisor`` is a :class:`~scs_supervisor.rpcclient.SupervisorClient`."""
    app = falcon.App(middleware=[BodyLimit(BODY_LIMIT), TokenAuth(token)])
    app.req_options.strip_url_path_trailing_slash = True
    admin = AdminPage()
    app.add_route('/', admin)
    app.add_route('/admin/{file}', admin, suffix='asset')
    nodes = Nodes(settings, store, supervisor)
    app.add_route('/nodes', nodes)
    app.add_route('/nodes/{name}', nodes, suffix='item')
    app.add_route('/nodes/{name}/disable', nodes, suffix='disable')
    app.add_route('/nodes/{name}/enable', nodes, suffix='enable')
    app.add_route('/operations/{op_id}', Operations(supervisor))
    app.add_route('/health', Health(store, supervisor))
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


def json_object(req: falcon.Request) -> dict:
    if req.content_length in (None, 0):
        return {}
    if req.content_type is None or not req.content_type.startswith('application/json'):
        raise falcon.HTTPUnsupportedMediaType(title='Unsupported media type',
                                              description='send application/json')
    body = req.get_media()
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(title='Invalid input',
                                    description='the body must be a JSON object')
    return body


class Nodes:
    """``/nodes``, ``/nodes/{name}`` and its disable/enable actions."""

    def __init__(self, settings, store: Store, supervisor):
        self.settings, self.store, self.supervisor = settings, store, supervisor

    def on_get(self, req, resp):
        resp.media = self.supervisor.list_nodes()

    def on_post(self, req, resp):
        body = json_object(req)
        name = validation.check_node_name(body.get('name'))
        fields = {k: v for k, v in body.items() if k != 'name'}
        self.store.create_node(self.settings.agent_id, name, fields)
        self.applied(req, resp, name, falcon.HTTP_201)
        resp.location = f'/nodes/{name}'

    def on_get_item(self, req, resp, name):
        resp.media = self.supervisor.get_node(validation.check_node_name(name))

    def on_patch_item(self, req, resp, name):
        changes = json_object(req)
        if not changes:
            raise validation.ValidationError('body', 'give at least one field to change')
        self.store.update_node(validation.check_node_name(name), changes)
        self.applied(req, resp, name)

    def on_delete_item(self, req, resp, name):
        self.store.delete_node(validation.check_node_name(name))
        self.supervisor.sync()
        resp.status = falcon.HTTP_204

    def on_post_disable(self, req, resp, name):
        self.store.update_node(validation.check_node_name(name), {'enabled': False})
        self.supervisor.sync()
        resp.media = self.supervisor.get_node(name)

    def on_post_enable(self, req, resp, name):
        self.store.update_node(validation.check_node_name(name), {'enabled': True})
        self.applied(req, resp, name)

    def applied(self, req, resp, name, status=falcon.HTTP_200):
        """Apply, then answer as the request asked: now, after consuming, or asynchronously."""
        result = self.supervisor.sync()
        wait, is_async = req.get_param('wait'), req.get_param_as_bool('async') or False
        if wait not in (None, 'consuming'):
            raise validation.ValidationError('wait', 'must be consuming')
        timeout = validation.check_timeout(req.get_param('timeout') or 120)
        if is_async:
            op_id = self.supervisor.start_operation([name], timeout)
            resp.status = falcon.HTTP_202
            resp.location = f'/operations/{op_id}'
            resp.media = {'operation': f'/operations/{op_id}', 'applied': result}
            return
        if wait == 'consuming':
            op = self.supervisor.wait_operation(self.supervisor.start_operation([name], timeout))
            if op['status'] == 'timeout':
                raise falcon.HTTPGatewayTimeout(title='Timed out', description=op['detail'],
                                                headers={'X-Operation': op['id']})
            if op['status'] == 'failed':
                raise falcon.HTTPConflict(title='The worker did not start',
                                          description=op['detail'])
        resp.status = status
        resp.media = self.supervisor.get_node(name)


class Operations:
    """``/operations/{id}``: what an asynchronous change has come to."""

    def __init__(self, supervisor):
        self.supervisor = supervisor

    def on_get(self, req, resp, op_id):
        if not op_id.isalnum() or len(op_id) > 64:
            raise falcon.HTTPNotFound(title='Not found', description=f'no operation {op_id}')
        resp.media = self.supervisor.get_operation(op_id)


class Health:
    """``/health``: the database and supervisord, without authentication."""

    def __init__(self, store: Store, supervisor):
        self.store, self.supervisor = store, supervisor

    def on_get(self, req, resp):
        checks = {}
        try:
            self.store.revision()
            checks['database'] = 'ok'
        except Unavailable as exc:
            checks['database'] = str(exc)
        try:
            self.supervisor.ping()
            checks['supervisord'] = 'ok'
        except (OSError, xmlrpc.client.Fault) as exc:
            checks['supervisord'] = f'unavailable: {exc}'
        healthy = all(v == 'ok' for v in checks.values())
        resp.status = falcon.HTTP_200 if healthy else falcon.HTTP_503
        resp.media = {'status': 'ok' if healthy else 'degraded', **checks}
