"""``GET /nodes`` from a snapshot: the encoded list, rebuilt only when something moved.

Building the list reads the database (the ORM is the costly part) and asks supervisord for
every process state; a dashboard polling it, or many clients at once, must not make supervisord
or the database do that work per request.  The snapshot is checked at most every
:data:`MAX_AGE` seconds: a cheap look at the revision counter, the newest loop observation and
the process states decides whether the database is read again.  Changes made through this API
drop it at once, so a client sees its own writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

from scs_supervisor.http.auth import SAFE_METHODS
from scs_supervisor.nodeview import processes_by_node, with_process
from scs_supervisor.store import Store

#: How stale a node list may be, in seconds, for changes made elsewhere (supervisorctl, the
#: loop, other agents) or a process changing state.
MAX_AGE = 0.25


class Snapshot:
    """The encoded node list, its ETag and when it was checked."""

    def __init__(self, body: bytes, checked: float):
        self.body = body
        self.etag = hashlib.blake2b(body, digest_size=12).hexdigest()
        self.checked = checked


class NodeListing:
    """Builds and keeps the node list of one agent; safe to call from many threads."""

    def __init__(self, settings, store: Store, supervisor, max_age: float = MAX_AGE,
                 clock=time.monotonic):
        self.settings, self.store, self.supervisor = settings, store, supervisor
        self.max_age, self.clock = max_age, clock
        self.host = os.uname().nodename
        self._snapshot: Snapshot | None = None
        self._versions = None
        self._nodes: list[dict] = []
        self._lock = threading.Lock()
        # A build that began before an invalidation must not be kept after it.
        self._generation = 0
        self._generation_lock = threading.Lock()

    def invalidate(self) -> None:
        """Something changed through this API: the next request rebuilds the list."""
        with self._generation_lock:
            self._generation += 1
            self._versions = None
            self._snapshot = None

    def current(self) -> Snapshot:
        """The snapshot, checked first when it is older than ``max_age``."""
        snapshot = self._snapshot
        if snapshot is not None and self.clock() - snapshot.checked < self.max_age:
            return snapshot
        with self._lock:  # one check at a time; the others take its result
            snapshot = self._snapshot
            if snapshot is not None and self.clock() - snapshot.checked < self.max_age:
                return snapshot
            return self._refresh()

    def refresh(self) -> Snapshot:
        """Check now: process states always, the database rows when the versions moved."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> Snapshot:
        generation = self._generation
        checked = self.clock()
        agent = self.settings.agent_id
        versions = self.store.versions(agent)
        nodes = self._nodes if versions == self._versions else self.store.list_nodes(agent)
        infos, render_errors = self.supervisor.process_states()
        processes, now = processes_by_node(infos), time.time()
        view = [with_process(node, processes.get(node['name']),
                             render_errors.get(node['name'], ''), self.host, now)
                for node in nodes]
        snapshot = Snapshot(json.dumps(view, separators=(',', ':')).encode(), checked)
        with self._generation_lock:
            if generation == self._generation:
                self._snapshot, self._versions, self._nodes = snapshot, versions, nodes
        return snapshot


class DropListingOnWrite:
    """Falcon middleware: any POST, PUT, PATCH or DELETE may change the node list."""

    def __init__(self, listing: NodeListing):
        self.listing = listing

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if req.method not in SAFE_METHODS:
            self.listing.invalidate()
