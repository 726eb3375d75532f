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


def assert_worker(agent, name, pid, consuming):
    """supervisord's own view (through supervisorctl): RUNNING as ``pid``, consuming those."""
    shown = agent.node(name)
    assert (shown['state'], shown['pid'], sorted(shown['consuming'])) == ('RUNNING', pid, consuming)
    assert pid_alive(pid)


def test_admin_page(make_agent, browser_page):
    page, problems = browser_page  # set up after the agent, so torn down before it
    port = free_port()
    agent = make_agent(http=f'127.0.0.1:{port}').start()
    base = f'http://127.0.0.1:{port}'
    api = Api(base, (agent.home / 'api-token').read_text().strip())
    wait_for(lambda: api.call('GET', '/health')[0] == 200, 30, message='the API up')

    page.goto(base + '/')
    expect(page.get_by_text('No nodes yet.')).to_be_visible()
    expect(page.get_by_text("No brokers declared: every node uses the agent's default broker."))\
        .to_be_visible()
    page.get_by_label('Token', exact=True).fill(api.token)
    page.reload()  # the token is kept for the tab
    expect(page.get_by_label('Token', exact=True)).to_have_value(api.token)

    questions = []  # every confirm() the page asks, answered yes
    page.on('dialog', lambda dialog: (questions.append(dialog.message), dialog.accept()))
    alert = page.get_by_role('alert')

    # Brokers are listed read-only, with the password masked as the API masks it.
    status, broker, _ = api.call('POST', '/brokers', {
        'name': 'spare', 'url': 'amqp://app:s3cret@127.0.0.1:5672//'})
    assert status == 201 and broker['url'] == 'amqp://app:**@127.0.0.1:5672//'
    broker_row = page.locator('#brokers tbody tr[data-broker="spare"]')
    expect(broker_row.locator('td.url')).to_have_text(broker['url'])
    expect(broker_row.locator('td.nodes')).to_have_text('none')
    assert 's3cret' not in page.content()
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

    shown = agent.node('web1')  # supervisord's own view, through supervisorctl
    assert shown['state'] == 'RUNNING' and pid_alive(shown['pid'])
    assert sorted(shown['consuming']) == ['alpha', 'beta'] and shown['pool'] == 'solo'
    pid = shown['pid']
    groups = {process['group'] for process in agent.rpc().supervisor.getAllProcessInfo()}
    assert 'scs-web1' in groups and (agent.home / 'programs' / 'scs-web1.conf').exists()

    # The queues section declares a queue; it is nobody's yet.
    queues = page.get_by_role('region', name='Queues', exact=True)
    queues.get_by_label('Queue name').fill('gamma')
    queues.get_by_label('Exchange type').select_option('topic')
    queues.get_by_label('Routing key').fill('gamma.#')
    queues.get_by_role('button', name='Create queue').click()
    expect(alert).to_have_text('Created queue gamma.')
    gamma = page.locator('#queues tbody tr[data-queue="gamma"]')
    expect(gamma.locator('td.nodes')).to_have_text('none')
    assert api.call('GET', '/queues/gamma')[1] == {
        'name': 'gamma', 'exchange': 'gamma', 'exchange_type': 'topic',
        'routing_key': 'gamma.#', 'options': {}, 'nodes': []}

    # Adding and removing a node's queue are live changes: the same worker consumes the new set.
    row.get_by_role('button', name='Edit').click()
    edit = page.get_by_role('region', name='Edit node web1')
    edit.get_by_label('Queue', exact=True).fill('gamma')
    edit.get_by_role('button', name='Add queue').click()
    expect(alert).to_have_text('Added queue gamma to node web1.', timeout=SLOW)
    expect(row.locator('td.consuming')).to_have_text('alpha, beta, gamma', timeout=SLOW)
    expect(row.locator('td.pid')).to_have_text(str(pid))
    expect(gamma.locator('td.nodes')).to_have_text('web1')
    assert_worker(agent, 'web1', pid, ['alpha', 'beta', 'gamma'])
    assert api.call('GET', '/nodes/web1')[1]['queues'] == ['alpha', 'beta', 'gamma']

    edit.get_by_role('button', name='Remove queue alpha from node web1').click()
    expect(alert).to_have_text('Removed queue alpha from node web1.', timeout=SLOW)
    expect(row.locator('td.consuming')).to_have_text('beta, gamma', timeout=SLOW)
    expect(row.locator('td.pid')).to_have_text(str(pid))
    expect(edit.locator('#edit-queues li span')).to_have_text(['beta', 'gamma'])
    assert_worker(agent, 'web1', pid, ['beta', 'gamma'])
    assert api.call('GET', '/nodes/web1')[1]['queues'] == ['beta', 'gamma']

    # Restart: a new worker, RUNNING again, consuming the same queues.
    row.get_by_role('button', name='Restart').click()
    expect(alert).to_contain_text('Restarted node web1', timeout=SLOW)
    expect(row.locator('td.pid')).not_to_have_text(str(pid), timeout=SLOW)
    expect(row.locator('td.state')).to_have_text('RUNNING', timeout=SLOW)
    expect(row.locator('td.consuming')).to_have_text('beta, gamma', timeout=SLOW)
    new_pid = int(row.locator('td.pid').text_content())
    assert new_pid != pid
    assert_worker(agent, 'web1', new_pid, ['beta', 'gamma'])
    wait_for(lambda: not pid_alive(pid), 30, message='the old worker gone')
    pid = new_pid

    # A queue in use: deleting it is refused with the API's 409 until forced, which takes it
    # off the node (a live change again).
    gamma.get_by_role('button', name='Delete queue gamma').click()
    status, refused, _ = api.call('DELETE', '/queues/gamma')
    assert status == 409 and 'web1' in refused['description']
    expect(alert).to_have_text(f"Could not delete queue gamma: Conflict: {refused['description']}")
    assert api.call('GET', '/queues/gamma')[1]['nodes'] == ['web1']
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / 'admin-page.png', full_page=True)
    force = queues.get_by_label('Force: delete a queue even when nodes consume it')
    force.check()
    gamma.get_by_role('button', name='Delete queue gamma').click()
    expect(alert).to_have_text('Deleted queue gamma.', timeout=SLOW)
    expect(gamma).to_have_count(0)
    expect(force).not_to_be_checked()  # good for one deletion only
    expect(row.locator('td.queues')).to_have_text('beta')
    expect(row.locator('td.consuming')).to_have_text('beta', timeout=SLOW)
    expect(row.locator('td.pid')).to_have_text(str(pid))
    assert api.call('GET', '/queues/gamma')[0] == 404
    assert api.call('GET', '/nodes/web1')[1]['queues'] == ['beta']
    assert_worker(agent, 'web1', pid, ['beta'])
    assert questions == ['Delete queue gamma?', 'Delete queue gamma, and remove it from every '
                         'node that consumes it?']

    row.get_by_role('button', name='Disable').click()
    expect(row.locator('td.state')).to_have_text('DISABLED', timeout=SLOW)
    expect(row.get_by_role('button', name='Enable')).to_be_visible()
    expect(row.get_by_role('button', name='Restart')).to_be_disabled()
    status, node, _ = api.call('GET', '/nodes/web1')
    assert status == 200 and node['enabled'] is False and node['state'] == 'DISABLED'
    wait_for(lambda: not pid_alive(pid), 30, message='the worker gone')

    # Modify form: only what changed is sent.
    edit.get_by_label('Log level').select_option('DEBUG')
    edit.get_by_role('button', name='Save changes').click()
    expect(alert).to_have_text('Saved node web1: loglevel.', timeout=SLOW)
    assert api.call('GET', '/nodes/web1')[1]['loglevel'] == 'DEBUG'

    row.get_by_role('button', name='Delete node web1').click()
    expect(alert).to_have_text('Deleted node web1.', timeout=SLOW)
    expect(row).to_have_count(0)
    expect(edit).to_be_hidden()
    assert questions[-1].startswith('Delete node web1?')
    assert api.call('GET', '/nodes/web1')[0] == 404
    groups = {process['group'] for process in agent.rpc().supervisor.getAllProcessInfo()}
    assert 'scs-web1' not in groups and not (agent.home / 'programs' / 'scs-web1.conf').exists()
    assert problems == []
