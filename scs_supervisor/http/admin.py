"""The admin page: a few static files from ``static/``, read once, served with strict headers.

The page is plain HTML, CSS and JavaScript (no build step) that talks to the JSON API of the
same origin; its changes carry the token the person types in.  Only the files named below are
ever served, so no request path reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

import falcon

STATIC_DIR = Path(__file__).with_name('static')
PAGE = 'admin.html'
#: The only files served under ``/admin/``, with their content types.
ASSETS = {
    'admin.js': 'text/javascript; charset=utf-8',
    'admin.css': 'text/css; charset=utf-8',
}
HEADERS = {
    'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-cache',
}


class AdminPage:
    """``/`` serves the page, ``/admin/{file}`` its script and style sheet."""

    def __init__(self, directory: Path = STATIC_DIR):
        self.files = {name: (directory / name).read_bytes() for name in (PAGE, *ASSETS)}

    def on_get(self, req, resp):
        self._serve(resp, PAGE, 'text/html; charset=utf-8')

    def on_get_asset(self, req, resp, file):
        if file not in ASSETS:
            raise falcon.HTTPNotFound(title='Not found', description=f'no file {file}')
        self._serve(resp, file, ASSETS[file])

    def _serve(self, resp, name: str, content_type: str) -> None:
        resp.content_type = content_type
        resp.set_headers(HEADERS)
        resp.data = self.files[name]
