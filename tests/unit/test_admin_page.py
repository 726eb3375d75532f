"""The admin page's files as the API serves them: content types, security headers, allowlist."""

import re
from html.parser import HTMLParser

import falcon
import pytest
from falcon import testing

from scs_supervisor.http import create_app
from scs_supervisor.http.admin import STATIC_DIR, AdminPage

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@pytest.fixture
def client():
    # Serving the page touches neither the database nor supervisord.
    return testing.TestClient(create_app(None, None, None, 'secret-token'))


def assert_secure(result, content_type):
    assert result.status_code == 200
    assert result.headers['content-type'] == content_type
    assert result.headers['content-security-policy'] == CSP
    assert result.headers['x-content-type-options'] == 'nosniff'
    assert result.headers['referrer-policy'] == 'no-referrer'
    assert result.headers['cache-control'] == 'no-cache'


def test_the_page_is_served_without_a_token(client):
    result = client.simulate_get('/')
    assert_secure(result, 'text/html; charset=utf-8')
    assert result.content == (STATIC_DIR / 'admin.html').read_bytes()
    assert '<script src="admin/admin.js" defer></script>' in result.text


@pytest.mark.parametrize('name,content_type', [
    ('admin.js', 'text/javascript; charset=utf-8'), ('admin.css', 'text/css; charset=utf-8')])
def test_assets(client, name, content_type):
    result = client.simulate_get(f'/admin/{name}')
    assert_secure(result, content_type)
    assert result.content == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize('path', [
    '/admin/nope.js', '/admin/admin.html', '/admin/ADMIN.JS', '/admin/..%2Fapp.py',
    '/admin/%2e%2e%2fadmin.py', '/admin/../app.py', '/admin/static/admin.js', '/admin/',
    '/admin', '/admin.js', '/static/admin.js'])
def test_only_the_listed_files_are_served(client, path):
    result = client.simulate_get(path)
    assert result.status_code == 404
    assert result.json['title']


def test_changing_the_page_needs_the_token(client):
    assert client.simulate_post('/').status_code == 401
    assert client.simulate_post('/', headers={
        'Authorization': 'Bearer secret-token'}).status_code == 405


def test_files_are_read_once_at_start(tmp_path):
    for name in ('admin.html', 'admin.js', 'admin.css'):
        (tmp_path / name).write_text(f'first {name}')
    app = falcon.App()
    app.add_route('/', AdminPage(tmp_path))
    (tmp_path / 'admin.html').write_text('changed')
    assert testing.TestClient(app).simulate_get('/').text == 'first admin.html'


class InlineFinder(HTMLParser):
    """Collects what the CSP would block: inline scripts, style elements and attributes."""

    def __init__(self):
        super().__init__()
        self.blocked = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == 'script' and 'src' not in names:
            self.blocked.append('inline <script>')
        if tag == 'style':
            self.blocked.append('<style>')
        self.blocked += [name for name in names if name == 'style' or name.startswith('on')]


def test_the_page_has_nothing_inline_that_the_policy_blocks():
    finder = InlineFinder()
    finder.feed((STATIC_DIR / 'admin.html').read_text())
    assert finder.blocked == []


def test_the_script_builds_no_markup_from_strings():
    script = (STATIC_DIR / 'admin.js').read_text()
    assert not re.search(r'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(',
                         script)
