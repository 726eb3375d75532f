"""The admin page in real headless Chromium, against a real scs-agent running real workers."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from scs_supervisor import validation
from tests.integration.conftest import pid_alive, wait_for
from tests.integration.test_http_api import Api, free_port

CHROMIUM = Path('/usr/bin/chromium')
# This machine has no outside network: keep Chromium from reaching for it.
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']
ARTIFACTS = Path(__file__).resolve().parents[2] / 'test-artifacts'
SLOW = 90_000  # ms: anything that waits for supervisord or a worker


@pytest.fixture
def chromium():
    """Debian's headless Chromium under Playwright; skipped without it, except in CI."""
    if not CHROMIUM.exists():
        reason = f'{CHROMIUM} is missing (Debian package chromium; .ci/run installs it)'
        if os.environ.get('CI'):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium):
    """A page, and the list of script errors and CSP violations it met.  Its last state is
    saved as ``test-artifacts/admin-page-end.png``, whether the test passed or not."""
    page = chromium.new_page(viewport={'width': 1400, 'height': 1000})
    page.set_default_timeout(30_000)
    problems = []
    page.on('pageerror', lambda error: problems.append(str(error)))
    page.on('console', lambda message: problems.append(message.text)
            if 'Content Security Policy' in message.text else None)
    yield page, problems
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / 'admin-page-end.png', full_page=True)


def test_admin_page(make_agent, browser_page):
    page, problems = browser_page  # set up after the agent, so torn down before it
    port = free_port()
    agent = make_agent(http=f'127.0.0.1:{port}').start()
    base = f'http://127.0.0.1:{port}'
    api = Api(base, (agent.home / 'api-token').read_text().strip())
    wait_for(lambda: api.call('GET', '/health')[0] == 200, 30, message='the API up')

    page.goto(base + '/')
    expect(page.get_by_text('No nodes yet.')).to_be_visible()
    page.get_by_label('Token', exact=True).fill(api.token)
    page.reload()  # the token is kept for the tab
    expect(page.get_by_label('Token', exact=True)).to_have_value(api.token)

    alert = page.get_by_role('alert')
    create = page.get_by_role('region', name='Create a node')
    name_field = create.get_by_label('Name', exact=True)

    # A name the API refuses: its 400 is shown on the page, and nothing is created.
    with pytest.raises(validation.ValidationError) as refused:
        validation.check_node_name('bad name')
    name_field.fill('bad name')
    create.get_by_role('button', name='Create node').click()
    expect(alert).to_have_text(f'Could not create node bad name: Invalid input: {refused.value}')
    assert api.call('GET', '/nodes')[1] == []

    name_field.fill('web1')
    create.get_by_label('Queues (comma-separated)').fill('alpha, beta')
    create.get_by_label('Min concurrency').fill('1')
    create.get_by_label('Max concurrency').fill('1')
    create.get_by_label('Pool').select_option('solo')
    create.get_by_label('App').fill('scs_supervisor.example')
    create.get_by_role('button', name='Create node').click()
    expect(alert).to_contain_text('Created node web1', timeout=SLOW)

    # The table refreshes by itself until the worker runs and consumes its queues.
    row = page.locator('#nodes tbody tr[data-node="web1"]')
    expect(row.locator('td.state')).to_have_text('RUNNING', timeout=SLOW)
    expect(row.locator('td.consuming')).to_have_text(
        re.compile(r'^(alpha, beta|beta, alpha)$'), timeout=SLOW)
    expect(row.locator('td.concurrency')).to_have_text('1–1')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / 'admin-page.png', full_page=True)

    shown = agent.node('web1')  # supervisord's own view, through supervisorctl
    assert shown['state'] == 'RUNNING' and pid_alive(shown['pid'])
    assert sorted(shown['consuming']) == ['alpha', 'beta'] and shown['pool'] == 'solo'
    pid = shown['pid']
    groups = {process['group'] for process in agent.rpc().supervisor.getAllProcessInfo()}
    assert 'scs-web1' in groups and (agent.home / 'programs' / 'scs-web1.conf').exists()

    row.get_by_role('button', name='Disable').click()
    expect(row.locator('td.state')).to_have_text('DISABLED', timeout=SLOW)
    expect(row.get_by_role('button', name='Enable')).to_be_visible()
    status, node, _ = api.call('GET', '/nodes/web1')
    assert status == 200 and node['enabled'] is False and node['state'] == 'DISABLED'
    wait_for(lambda: not pid_alive(pid), 30, message='the worker gone')

    # Modify form: only what changed is sent.
    row.get_by_role('button', name='Edit').click()
    edit = page.get_by_role('region', name='Edit node web1')
    edit.get_by_label('Log level').select_option('DEBUG')
    edit.get_by_role('button', name='Save changes').click()
    expect(alert).to_have_text('Saved node web1: loglevel.', timeout=SLOW)
    assert api.call('GET', '/nodes/web1')[1]['loglevel'] == 'DEBUG'

    questions = []
    page.once('dialog', lambda dialog: (questions.append(dialog.message), dialog.accept()))
    row.get_by_role('button', name='Delete').click()
    expect(alert).to_have_text('Deleted node web1.', timeout=SLOW)
    expect(row).to_have_count(0)
    expect(edit).to_be_hidden()
    assert questions and questions[0].startswith('Delete node web1?')
    assert api.call('GET', '/nodes/web1')[0] == 404
    groups = {process['group'] for process in agent.rpc().supervisor.getAllProcessInfo()}
    assert 'scs-web1' not in groups and not (agent.home / 'programs' / 'scs-web1.conf').exists()
    assert problems == []
