"""``/nodes`` and everything under a node: its queues, its concurrency, restart, enable, disable.

Writes go to the database first, then supervisord applies them (``scs.sync``), so a change
answers once it is applied.  ``?wait=consuming`` also waits until the worker consumes exactly
its queues (``timeout``, 504 with what was seen when it runs out); ``?async=true`` answers 202
with an operation to poll at ``/operations/{id}``.
"""

from __future__ import annotations

import falcon

from scs_supervisor import validation
from scs_supervisor.http.listing import NodeListing
from scs_supervisor.http.media import bool_param, json_changes, json_object
from scs_supervisor.store import Store


class Nodes:
    """``/nodes`` and ``/nodes/{name}`` with its actions."""

    def __init__(self, settings, store: Store, supervisor, listing: NodeListing):
        self.settings, self.store, self.supervisor = settings, store, supervisor
        self.listing = listing

    def on_get(self, req, resp):
        snapshot = self.listing.current()
        resp.etag = snapshot.etag
        if req.if_none_match and any(tag == snapshot.etag or tag == '*'
                                     for tag in req.if_none_match):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = falcon.MEDIA_JSON
        resp.data = snapshot.body

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
        self.store.update_node(validation.check_node_name(name), json_changes(req))
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

    def on_post_restart(self, req, resp, name):
        """Stop and start the node's worker (an enabled node of this agent)."""
        self.store.enabled_node(validation.check_node_name(name))
        self.supervisor.restart_node(name)
        self.answer(req, resp, name)

    def on_put_queue(self, req, resp, name, queue):
        self.store.add_queue(validation.check_node_name(name), queue)
        self.applied(req, resp, name)

    def on_delete_queue(self, req, resp, name, queue):
        self.store.remove_queue(validation.check_node_name(name), queue)
        self.applied(req, resp, name)

    def on_put_autoscale(self, req, resp, name):
        body = json_object(req)
        unknown = sorted(set(body) - {'min', 'max'})
        if unknown:
            raise validation.ValidationError(unknown[0], 'unknown field (known: min, max)')
        for field in ('min', 'max'):
            if field not in body:
                raise validation.ValidationError(field, 'is required')
        self.store.set_autoscale(validation.check_node_name(name), body['min'], body['max'])
        self.applied(req, resp, name)

    def applied(self, req, resp, name, status=falcon.HTTP_200):
        """Apply the database to supervisord, then answer as the request asked."""
        wait_params(req)  # refuse bad parameters before anything is applied
        resp.context.applied = self.supervisor.sync()
        self.answer(req, resp, name, status)

    def answer(self, req, resp, name, status=falcon.HTTP_200):
        """Answer now, after the worker consumes, or at once with an operation to poll."""
        wait, is_async, timeout = wait_params(req)
        if is_async:
            op_id = self.supervisor.start_operation([name], timeout)
            resp.status = falcon.HTTP_202
            resp.location = f'/operations/{op_id}'
            resp.media = {'operation': f'/operations/{op_id}',
                          'applied': getattr(resp.context, 'applied', None)}
            return
        if wait == 'consuming':
            op = self.supervisor.watch([name], timeout)
            if op['status'] == 'timeout':
                raise falcon.HTTPGatewayTimeout(title='Timed out', description=op['detail'],
                                                headers={'X-Operation': op['id']})
            if op['status'] == 'failed':
                raise falcon.HTTPConflict(title='The worker did not start',
                                          description=op['detail'])
        resp.status = status
        resp.media = self.supervisor.get_node(name)


def wait_params(req) -> tuple[str | None, bool, int]:
    """``wait``, ``async`` and ``timeout`` of a changing request, validated."""
    wait = req.get_param('wait')
    if wait not in (None, 'consuming'):
        raise validation.ValidationError('wait', 'must be consuming')
    return wait, bool_param(req, 'async'), validation.check_timeout(req.get_param('timeout') or 120)


class Operations:
    """``/operations/{id}``: what an asynchronous change has come to."""

    def __init__(self, supervisor):
        self.supervisor = supervisor

    def on_get(self, req, resp, op_id):
        if not op_id.isalnum() or len(op_id) > 64:
            raise falcon.HTTPNotFound(title='Not found', description=f'no operation {op_id}')
        resp.media = self.supervisor.get_operation(op_id)
