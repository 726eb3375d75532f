"""Bearer-token authentication of every mutating request, compared in constant time."""

from __future__ import annotations

import hmac

import falcon

SAFE_METHODS = ('GET', 'HEAD', 'OPTIONS')


class TokenAuth:
    """Falcon middleware: POST, PUT, PATCH and DELETE need ``Authorization: Bearer <token>``."""

    def __init__(self, token: str):
        if not token:
            raise ValueError('an API token is required')
        self._token = token.encode()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method in SAFE_METHODS:
            return
        scheme, _, given = (req.get_header('Authorization') or '').partition(' ')
        if scheme.lower() != 'bearer' or not hmac.compare_digest(given.strip().encode(),
                                                                 self._token):
            raise falcon.HTTPUnauthorized(
                title='Unauthorized',
                description='this request needs the header Authorization: Bearer <token> '
                            '(the token is in $SCS_HOME/api-token)',
                challenges=['Bearer'])


class BodyLimit:
    """Refuse bodies over ``limit`` bytes before anything reads them."""

    def __init__(self, limit: int):
        self.limit = limit

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length and req.content_length > self.limit:
            raise falcon.HTTPContentTooLarge(
                title='Body too large', description=f'the limit is {self.limit} bytes')
