"""``/queues`` and ``/brokers``: the declarations nodes refer to by name."""

from __future__ import annotations

import falcon

from scs_supervisor import validation
from scs_supervisor.http.media import bool_param, json_changes, json_object
from scs_supervisor.store import Store


class Queues:
    """``/queues`` and ``/queues/{name}``; deleting a queue in use needs ``?force=true``."""

    def __init__(self, store: Store, supervisor):
        self.store, self.supervisor = store, supervisor

    def on_get(self, req, resp):
        resp.media = self.store.list_queues()

    def on_post(self, req, resp):
        body = json_object(req)
        name = validation.check_queue_name(body.get('name'), 'name')
        resp.media = self.store.create_queue(name, {k: v for k, v in body.items()
                                                    if k != 'name'})
        resp.status = falcon.HTTP_201
        resp.location = f'/queues/{falcon.uri.encode_value(name)}'

    def on_get_item(self, req, resp, name):
        resp.media = self.store.get_queue(name)

    def on_patch_item(self, req, resp, name):
        resp.media = self.store.update_queue(name, json_changes(req))

    def on_delete_item(self, req, resp, name):
        if self.store.delete_queue(name, force=bool_param(req, 'force')):
            self.supervisor.sync()  # nodes lost the queue
        resp.status = falcon.HTTP_204


class Brokers:
    """``/brokers`` and ``/brokers/{name}``: URLs are shown with their password masked."""

    def __init__(self, store: Store, supervisor):
        self.store, self.supervisor = store, supervisor

    def on_get(self, req, resp):
        resp.media = self.store.list_brokers()

    def on_post(self, req, resp):
        body = json_object(req)
        unknown = sorted(set(body) - {'name', 'url'})
        if unknown:
            raise validation.ValidationError(unknown[0], 'unknown field (known: name, url)')
        resp.media = self.store.create_broker(body.get('name'), body.get('url'))
        resp.status = falcon.HTTP_201
        resp.location = f'/brokers/{resp.media["name"]}'

    def on_get_item(self, req, resp, name):
        resp.media = self.store.get_broker(name)

    def on_patch_item(self, req, resp, name):
        broker = self.store.update_broker(name, json_changes(req))
        if broker['nodes']:
            self.supervisor.sync()  # their workers restart with the new URL
        resp.media = broker

    def on_delete_item(self, req, resp, name):
        self.store.delete_broker(name)
        resp.status = falcon.HTTP_204
