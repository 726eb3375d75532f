// The admin page of scs-supervisor: plain DOM code against the JSON API of the same origin.
// Every element is built with createElement and textContent, never from HTML strings, so no
// value from the API is ever parsed as markup.
'use strict';

(() => {
  const POOLS = ['prefork', 'threads', 'solo', 'eventlet', 'gevent'];
  const LOGLEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
  const REFRESH_MS = 2000;
  const READ_TIMEOUT_MS = 10000;
  const WRITE_TIMEOUT_MS = 150000; // a change answers once supervisord applied it
  const TOKEN_KEY = 'scs-api-token';

  const $ = (id) => document.getElementById(id);
  const tokenInput = $('token');
  const message = $('message');

  /** An element with text, attributes, listeners (`on...`) and children. */
  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  // ---- talking to the API -------------------------------------------------------------

  class ApiError extends Error {
    constructor(text, status = 0) {
      super(text);
      this.status = status;
    }
  }

  const nodePath = (name, ...rest) =>
    ['nodes', name, ...rest].map(encodeURIComponent).join('/');

  /** One API call; resolves to the decoded JSON body, rejects with a readable ApiError. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = tokenInput.value.trim();
    if (method !== 'GET' && token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const timeout = method === 'GET' ? READ_TIMEOUT_MS : WRITE_TIMEOUT_MS;
    let response;
    try {
      response = await fetch(path, {
        method, headers, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeout),
      });
    } catch (err) {
      if (err.name === 'TimeoutError') {
        throw new ApiError(`no answer from the API within ${timeout / 1000} s`);
      }
      throw new ApiError(`network error: the API cannot be reached (${err.message})`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null; // not JSON: described from the status below
    }
    if (!response.ok) {
      throw new ApiError(describeError(method, path, response, data, text), response.status);
    }
    return data;
  }

  function describeError(method, path, response, data, text) {
    if (data && typeof data.title === 'string') {
      if (data.description) return `${data.title}: ${data.description}`;
      if (response.status === 404 || response.status === 405) {
        return `${data.title} (this agent's API has no ${method} /${path.split('?')[0]})`;
      }
      return data.title;
    }
    const status = `HTTP ${response.status} ${response.statusText}`.trim();
    return text ? `${status}: ${text.slice(0, 200)}` : status;
  }

  // ---- messages -----------------------------------------------------------------------

  function say(text, kind) {
    message.textContent = text;
    message.className = kind;
    message.hidden = false;
  }

  /**
   * Run one change: say what is going on, disable the button meanwhile, then report the
   * result or the API's error, and refresh.  Resolves to the API's answer, or undefined.
   */
  async function act(what, call, done, button) {
    say(`Working: ${what}…`, 'busy');
    if (button) button.disabled = true;
    try {
      const result = await call();
      say(typeof done === 'function' ? done(result) : done, 'ok');
      return result;
    } catch (err) {
      say(`Could not ${what}: ${err.message}`, 'error');
      if (err.status === 401) tokenInput.focus();
      return undefined;
    } finally {
      if (button) button.disabled = false;
      refresh();
    }
  }

  // ---- reading forms --------------------------------------------------------------------

  /** An integer field: omitted when empty; anything else is sent as typed for the API to judge. */
  function intValue(input) {
    const raw = input.value.trim();
    if (raw === '') return undefined;
    const number = Number(raw);
    return Number.isInteger(number) ? number : raw;
  }

  function listValue(input) {
    return input.value.split(',').map((item) => item.trim()).filter(Boolean);
  }

  function withoutEmpty(object) {
    return Object.fromEntries(Object.entries(object).filter(
      ([, value]) => value !== undefined && value !== '' &&
        !(Array.isArray(value) && value.length === 0)));
  }

  function fillSelect(select, options, selected) {
    select.replaceChildren(...options.map((option) => el('option', { text: option })));
    select.value = selected;
  }

  // ---- keyed tables ---------------------------------------------------------------------

  /**
   * Bring a table body in line with `items`, rebuilding only the rows whose shown values
   * changed, so a refresh does not steal the focus or a click from an unchanged row.
   */
  function syncRows(tbody, rows, items, key, cellsOf, build) {
    const seen = new Set();
    let previous = null;
    for (const item of items) {
      const cells = cellsOf(item);
      const signature = JSON.stringify(cells);
      let row = rows.get(key(item));
      if (!row || row.signature !== signature) {
        const tr = build(item, cells);
        if (row) row.tr.replaceWith(tr);
        row = { tr, signature };
        rows.set(key(item), row);
      }
      const expected = previous ? previous.nextSibling : tbody.firstChild;
      if (row.tr !== expected) tbody.insertBefore(row.tr, expected);
      previous = row.tr;
      seen.add(key(item));
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
  }

  // ---- nodes ----------------------------------------------------------------------------

  const nodeRows = new Map();
  let nodesByName = new Map();

  const dash = (value) => (value === null || value === undefined || value === '' ? '—' : value);

  function nodeCells(node) {
    let error = node.failed ? `failed: ${node.failed}` : node.render_error || node.last_error;
    if (error && error.length > 160) error = `${error.slice(0, 157)}…`;
    return {
      name: node.name,
      state: node.state,
      pid: node.pid ? String(node.pid) : '—',
      queues: (node.queues || []).join(', '),
      // Sorted: workers report their queues in any order, which would rebuild the row.
      consuming: Array.isArray(node.consuming)
        ? [...node.consuming].sort().join(', ') || 'none' : '—',
      concurrency: `${node.min_concurrency}–${node.max_concurrency}`,
      pool: node.pool,
      enabled: node.enabled ? 'yes' : 'no',
      restarts: String(node.restarts ?? 0),
      error: dash(error),
      enabledFlag: node.enabled,
    };
  }

  function buildNodeRow(node, cells) {
    const name = node.name;
    const tr = el('tr', { 'data-node': name });
    for (const column of ['name', 'state', 'pid', 'queues', 'consuming', 'concurrency',
      'pool', 'enabled', 'restarts', 'error']) {
      const td = el(column === 'name' ? 'th' : 'td', { class: column, text: cells[column] });
      if (column === 'name') td.setAttribute('scope', 'row');
      if (column === 'state') td.dataset.state = cells.state;
      if (column === 'error' && node.failed) td.classList.add('failed');
      tr.append(td);
    }
    const toggle = cells.enabledFlag ? 'Disable' : 'Enable';
    const verb = toggle.toLowerCase();
    const button = (text, handler) => el('button', {
      type: 'button', text, 'aria-label': `${text} node ${name}`,
      onclick: (event) => handler(event.currentTarget),
    });
    const restart = button('Restart', (b) => act(`restart node ${name}`,
      () => api('POST', nodePath(name, 'restart')),
      (n) => `Restarted node ${name} (${n.state}, pid ${n.pid || '—'}).`, b));
    if (!cells.enabledFlag) {
      // The API refuses (409) to restart a disabled node: Enable starts it.
      restart.disabled = true;
      restart.classList.add('unavailable');
      restart.title = 'A disabled node has no worker: Enable starts it';
    }
    tr.append(el('td', { class: 'actions' }, [
      button('Edit', () => openEdit(name)),
      button(toggle, (b) => act(`${verb} node ${name}`, () => api('POST', nodePath(name, verb)),
        (n) => `${toggle}d node ${name} (${n.state}).`, b)),
      restart,
      button('Delete', (b) => {
        const question = `Delete node ${name}? Its worker is stopped and the node is removed.`;
        if (window.confirm(question)) {
          act(`delete node ${name}`, () => api('DELETE', nodePath(name)),
            `Deleted node ${name}.`, b);
        }
      }),
    ]));
    return tr;
  }

  function renderNodes(nodes) {
    nodesByName = new Map(nodes.map((node) => [node.name, node]));
    syncRows($('nodes').tBodies[0], nodeRows, nodes, (node) => node.name, nodeCells, buildNodeRow);
    $('nodes-empty').hidden = nodes.length > 0;
    updateEdit();
  }

  $('create-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = $('create-name').value.trim();
    const body = withoutEmpty({
      name,
      queues: listValue($('create-queues')),
      min_concurrency: intValue($('create-min')),
      max_concurrency: intValue($('create-max')),
      pool: $('create-pool').value,
      app: $('create-app').value.trim(),
      loglevel: $('create-loglevel').value,
    });
    body.enabled = $('create-enabled').checked;
    const node = await act(`create node ${name}`, () => api('POST', 'nodes', body),
      (n) => `Created node ${n.name} (${n.state}).`, form.querySelector('button[type=submit]'));
    if (node) resetCreateForm();
  });

  function resetCreateForm() {
    $('create-form').reset();
    fillSelect($('create-pool'), POOLS, 'prefork');
    fillSelect($('create-loglevel'), LOGLEVELS, 'INFO');
  }

  // ---- editing one node -------------------------------------------------------------------

  let editing = null; // {name, original: the fields as the form was filled}

  function editFields() {
    return {
      min_concurrency: intValue($('edit-min')),
      max_concurrency: intValue($('edit-max')),
      pool: $('edit-pool').value,
      app: $('edit-app').value.trim() || null,
      loglevel: $('edit-loglevel').value,
    };
  }

  function fillEdit(node) {
    $('edit-min').value = node.min_concurrency;
    $('edit-max').value = node.max_concurrency;
    fillSelect($('edit-pool'), POOLS, node.pool);
    $('edit-app').value = node.app || '';
    fillSelect($('edit-loglevel'), LOGLEVELS, node.loglevel);
    editing = { name: node.name, original: editFields(), queues: null };
    $('edit-heading').textContent = `Edit node ${node.name}`;
    renderEditQueues(node);
  }

  function openEdit(name) {
    const node = nodesByName.get(name);
    if (!node) return;
    fillEdit(node);
    $('edit').hidden = false;
    $('edit').scrollIntoView({ block: 'nearest' });
    $('edit-min').focus();
  }

  function closeEdit() {
    editing = null;
    $('edit').hidden = true;
  }

  /** Keep the panel's queue list current; close the panel when its node is gone. */
  function updateEdit() {
    if (!editing) return;
    const node = nodesByName.get(editing.name);
    if (node) renderEditQueues(node);
    else closeEdit();
  }

  function renderEditQueues(node) {
    const shown = (node.queues || []).join(',');
    if (editing.queues === shown) return;
    editing.queues = shown;
    $('edit-queues').replaceChildren(...(node.queues || []).map((queue) => el('li', {}, [
      el('span', { text: queue }),
      el('button', {
        type: 'button', text: 'Remove',
        'aria-label': `Remove queue ${queue} from node ${node.name}`,
        onclick: (event) => changeQueue('DELETE', node.name, queue, event.currentTarget),
      }),
    ])));
  }

  async function changeQueue(method, name, queue, button) {
    const [verb, done] = method === 'PUT'
      ? [`add queue ${queue} to`, `Added queue ${queue} to`]
      : [`remove queue ${queue} from`, `Removed queue ${queue} from`];
    const node = await act(`${verb} node ${name}`,
      () => api(method, nodePath(name, 'queues', queue)), `${done} node ${name}.`, button);
    if (node && editing && editing.name === name) renderEditQueues(node);
    return node;
  }

  $('edit-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const { name, original } = editing;
    const fields = editFields();
    const changes = Object.fromEntries(Object.entries(fields).filter(
      ([key, value]) => value !== undefined && value !== original[key]));
    if (Object.keys(changes).length === 0) {
      say(`Nothing to change on node ${name}.`, 'ok');
      return;
    }
    const node = await act(`change node ${name}`, () => api('PATCH', nodePath(name), changes),
      `Saved node ${name}: ${Object.keys(changes).join(', ')}.`,
      event.currentTarget.querySelector('button[type=submit]'));
    if (node && editing && editing.name === name) fillEdit(node);
  });

  $('edit-queue-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const queue = $('edit-queue').value.trim();
    if (await changeQueue('PUT', editing.name, queue, event.submitter)) $('edit-queue').value = '';
  });

  $('edit-close').addEventListener('click', closeEdit);

  // ---- queues ---------------------------------------------------------------------------

  const queueRows = new Map();

  function queueCells(queue) {
    return {
      name: queue.name,
      exchange: dash(queue.exchange),
      exchange_type: dash(queue.exchange_type),
      routing_key: dash(queue.routing_key),
      nodes: (queue.nodes || []).join(', ') || 'none',
    };
  }

  function buildQueueRow(queue, cells) {
    const tr = el('tr', { 'data-queue': queue.name });
    for (const column of ['name', 'exchange', 'exchange_type', 'routing_key', 'nodes']) {
      const td = el(column === 'name' ? 'th' : 'td', { class: column, text: cells[column] });
      if (column === 'name') td.setAttribute('scope', 'row');
      tr.append(td);
    }
    tr.append(el('td', { class: 'actions' }, [el('button', {
      type: 'button', text: 'Delete', 'aria-label': `Delete queue ${queue.name}`,
      onclick: (event) => deleteQueue(queue.name, event.currentTarget),
    })]));
    return tr;
  }

  async function deleteQueue(name, button) {
    const force = $('queue-force').checked;
    const question = force
      ? `Delete queue ${name}, and remove it from every node that consumes it?`
      : `Delete queue ${name}?`;
    if (!window.confirm(question)) return;
    const path = `queues/${encodeURIComponent(name)}${force ? '?force=true' : ''}`;
    // A 204 resolves to null, a failure to undefined.
    const deleted = await act(`delete queue ${name}`, () => api('DELETE', path),
      `Deleted queue ${name}.`, button);
    // Force is for one deletion: the next one is refused again while nodes use the queue.
    if (deleted !== undefined) $('queue-force').checked = false;
  }

  function renderQueues(queues) {
    syncRows($('queues').tBodies[0], queueRows, queues, (queue) => queue.name, queueCells,
      buildQueueRow);
    $('queues-status').textContent = queues.length ? '' : 'No queues yet.';
  }

  $('queue-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = $('queue-name').value.trim();
    const body = withoutEmpty({
      name,
      exchange: $('queue-exchange').value.trim(),
      exchange_type: $('queue-exchange-type').value,
      routing_key: $('queue-routing-key').value.trim(),
    });
    const queue = await act(`create queue ${name}`, () => api('POST', 'queues', body),
      `Created queue ${name}.`, form.querySelector('button[type=submit]'));
    if (queue) form.reset();
  });

  // ---- brokers (read-only) ---------------------------------------------------------------

  const brokerRows = new Map();

  function brokerCells(broker) {
    // The API masks the password in every URL it answers.
    return { name: broker.name, url: broker.url, nodes: (broker.nodes || []).join(', ') || 'none' };
  }

  function buildBrokerRow(broker, cells) {
    const tr = el('tr', { 'data-broker': broker.name });
    for (const column of ['name', 'url', 'nodes']) {
      const td = el(column === 'name' ? 'th' : 'td', { class: column, text: cells[column] });
      if (column === 'name') td.setAttribute('scope', 'row');
      tr.append(td);
    }
    return tr;
  }

  function renderBrokers(brokers) {
    syncRows($('brokers').tBodies[0], brokerRows, brokers, (broker) => broker.name, brokerCells,
      buildBrokerRow);
    $('brokers-status').textContent = brokers.length
      ? '' : "No brokers declared: every node uses the agent's default broker.";
  }

  // ---- refreshing -----------------------------------------------------------------------

  let timer = null;
  let inFlight = false;
  let again = false;

  /** Read nodes, queues and brokers now, then every REFRESH_MS; never two reads at once. */
  async function refresh() {
    clearTimeout(timer);
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      if (!document.hidden) await readAll();
    } finally {
      inFlight = false;
      timer = setTimeout(refresh, again ? 0 : REFRESH_MS);
      again = false;
    }
  }

  async function readAll() {
    const [nodes, queues, brokers] = await Promise.allSettled(
      [api('GET', 'nodes'), api('GET', 'queues'), api('GET', 'brokers')]);
    const status = $('refresh-status');
    if (nodes.status === 'fulfilled') {
      renderNodes(nodes.value);
      status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      status.className = '';
    } else {
      status.textContent = `Could not read the nodes: ${nodes.reason.message} (retrying)`;
      status.className = 'error';
    }
    $('queues-list').hidden = queues.status !== 'fulfilled';
    if (queues.status === 'fulfilled') renderQueues(queues.value);
    else $('queues-status').textContent = `Could not read the queues: ${queues.reason.message}`;
    $('brokers-list').hidden = brokers.status !== 'fulfilled' || brokers.value.length === 0;
    if (brokers.status === 'fulfilled') renderBrokers(brokers.value);
    else $('brokers-status').textContent = `Could not read the brokers: ${brokers.reason.message}`;
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });

  // ---- the token ------------------------------------------------------------------------

  function storeToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage refused (a private mode): the field still works for this page
    }
  }

  try {
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    tokenInput.value = '';
  }
  tokenInput.addEventListener('input', () => storeToken(tokenInput.value.trim()));
  $('token-form').addEventListener('submit', (event) => event.preventDefault());
  $('token-forget').addEventListener('click', () => {
    tokenInput.value = '';
    storeToken('');
    say('The token is forgotten.', 'ok');
  });

  resetCreateForm();
  refresh();
})();
