"""Reading requests: JSON object bodies and boolean query parameters."""

from __future__ import annotations

import falcon

from scs_supervisor.validation import ValidationError


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


def json_changes(req: falcon.Request) -> dict:
    """A PATCH body: a JSON object naming at least one field."""
    changes = json_object(req)
    if not changes:
        raise ValidationError('body', 'give at least one field to change')
    return changes


def bool_param(req: falcon.Request, name: str) -> bool:
    """A ``true``/``false`` query parameter, false when absent."""
    try:
        return req.get_param_as_bool(name) or False
    except falcon.HTTPBadRequest:
        raise ValidationError(name, 'must be true or false') from None
