"""Reading request bodies: JSON objects only."""

from __future__ import annotations

import falcon


def json_object(req: falcon.Request) -> dict:
    """The request's JSON object body (``{}`` when empty); 415 for other media, 400 for others."""
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
