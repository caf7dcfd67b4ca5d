// Tern dashboard: plain JavaScript, no framework, no network beyond this
// broker's own /api/v1. Every value from the broker (client ids, topics,
// payloads) is inserted as text, never as HTML.
'use strict';

(() => {
  const POLL_MS = 2000;
  const CHART_POINTS = 90;
  const LIVE_MAX_ROWS = 500;

  // ---- access token: ?access_token= once, then kept for this tab ----
  const params = new URLSearchParams(location.search);
  if (params.has('access_token')) {
    sessionStorage.setItem('tern.token', params.get('access_token'));
    params.delete('access_token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }
  const token = sessionStorage.getItem('tern.token');

  const $ = (id) => document.getElementById(id);

  /** Build an element: el('td', { class: 'num' }, 'text', child, ...). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c === undefined || c === null ? '' : String(c)));
    return node;
  }

  function setStatus(text, error) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('error', Boolean(error));
  }

  async function api(method, path, body) {
    const headers = {};
    if (token) headers.authorization = 'Bearer ' + token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch('/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const message = data && data.error ? data.error.message : res.statusText;
      const err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function fmtNumber(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
  }

  function fmtDuration(seconds) {
    const d = Math.floor(seconds / 86400);
    const h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + s + 's';
  }

  // ---- charts (canvas) ----

  function drawChart(canvas, series, opts) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width;
    const h = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 44;
    const bottom = h - 18;
    const top = 8;
    const right = w - 8;
    let max = 1;
    for (const s of series) for (const v of s.values) if (v > max) max = v;
    if (opts.integer) max = Math.max(max, 4); // whole-number ticks
    max = niceMax(max);
    g.strokeStyle = '#dde1e7';
    g.fillStyle = '#6b7585';
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = bottom - ((bottom - top) * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(right, y);
      g.stroke();
      const label = (max * i) / 4;
      g.fillText(opts.integer ? String(Math.round(label)) : label.toFixed(label < 10 ? 1 : 0), 4, y + 4);
    }
    g.fillText('last ' + Math.round((CHART_POINTS * POLL_MS) / 60000) + ' min', left, h - 4);
    for (const s of series) {
      const n = s.values.length;
      if (n === 0) continue;
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.beginPath();
      s.values.forEach((v, i) => {
        const x = right - ((right - left) * (n - 1 - i)) / (CHART_POINTS - 1);
        const y = bottom - ((bottom - top) * v) / max;
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
    }
  }

  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // ---- overview ----

  const history_ = { connections: [], received: [], sent: [] };
  let last = null;

  function card(label, value, id) {
    return el('div', { class: 'card', 'data-card': id }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value));
  }

  async function refreshOverview() {
    const o = await api('GET', '/overview');
    $('version').textContent = 'v' + o.version;
    const dropped = Object.values(o.messages.dropped).reduce((a, b) => a + b, 0);
    $('cards').replaceChildren(
      card('Connections', fmtNumber(o.connections), 'connections'),
      card('Sessions', fmtNumber(o.sessions.total) + ' (' + fmtNumber(o.sessions.offline) + ' offline)', 'sessions'),
      card('Subscriptions', fmtNumber(o.subscriptions), 'subscriptions'),
      card('Retained', fmtNumber(o.retained.count), 'retained'),
      card('Messages in', fmtNumber(o.messages.received), 'received'),
      card('Deliveries', fmtNumber(o.messages.sent), 'sent'),
      card('Dropped', fmtNumber(dropped), 'dropped'),
      card('In flight / queued', fmtNumber(o.inflight) + ' / ' + fmtNumber(o.queued), 'inflight'),
      card('Uptime', fmtDuration(o.uptimeSeconds), 'uptime'),
    );
    const now = Date.parse(o.time);
    if (last !== null && now > last.time) {
      const dt = (now - last.time) / 1000;
      push(history_.received, Math.max(0, (o.messages.received - last.received) / dt));
      push(history_.sent, Math.max(0, (o.messages.sent - last.sent) / dt));
    }
    push(history_.connections, o.connections);
    last = { time: now, received: o.messages.received, sent: o.messages.sent };
    if (current === 'overview') drawOverview();
  }

  function drawOverview() {
    drawChart($('chart-connections'), [{ values: history_.connections, color: '#1f6feb' }], { integer: true });
    drawChart(
      $('chart-messages'),
      [
        { values: history_.received, color: '#1f6feb' },
        { values: history_.sent, color: '#d9730d' },
      ],
      {},
    );
  }

  function push(list, v) {
    list.push(v);
    if (list.length > CHART_POINTS) list.shift();
  }

  // ---- clients ----

  async function refreshClients() {
    const q = $('client-search').value.trim();
    const page = await api('GET', '/clients?limit=1000' + (q ? '&search=' + encodeURIComponent(q) : ''));
    $('client-count').textContent = page.total + ' connected';
    $('client-rows').replaceChildren(
      ...page.items.map((c) =>
        el(
          'tr',
          { class: 'clickable', 'data-client': c.clientId, onclick: () => showClient(c.clientId) },
          el('td', {}, c.clientId),
          el('td', {}, c.username || ''),
          el('td', {}, c.address + ':' + c.port),
          el('td', {}, c.protocolLevel === 5 ? '5.0' : c.protocolLevel === 4 ? '3.1.1' : '3.1'),
          el('td', { class: 'num' }, c.keepalive + 's'),
          el('td', { class: 'num' }, c.subscriptions),
          el('td', { class: 'num' }, c.inflight),
          el('td', { class: 'num' }, c.queued),
          el(
            'td',
            {},
            el('button', { class: 'danger', 'data-kick': c.clientId, onclick: (ev) => { ev.stopPropagation(); kick(c.clientId); } }, 'Kick'),
          ),
        ),
      ),
    );
  }

  async function showClient(clientId) {
    const d = await api('GET', '/clients/' + encodeURIComponent(clientId));
    const box = $('client-detail');
    box.hidden = false;
    box.textContent = JSON.stringify(d, null, 2);
  }

  async function kick(clientId) {
    try {
      await api('POST', '/clients/' + encodeURIComponent(clientId) + '/disconnect', {});
      setStatus('Disconnected ' + clientId);
    } catch (err) {
      setStatus('Kick failed: ' + err.message, true);
    }
    $('client-detail').hidden = true;
    await refreshClients();
  }

  // ---- subscriptions ----

  async function refreshSubscriptions() {
    const f = $('sub-filter').value.trim();
    const t = $('sub-topic').value.trim();
    let q = '/subscriptions?limit=1000';
    if (f) q += '&filter=' + encodeURIComponent(f);
    if (t) q += '&topic=' + encodeURIComponent(t);
    const page = await api('GET', q);
    $('sub-count').textContent = page.total + ' subscriptions';
    $('sub-rows').replaceChildren(
      ...page.items.map((s) =>
        el(
          'tr',
          {},
          el('td', {}, s.filter),
          el('td', {}, s.clientId),
          el('td', { class: 'num' }, s.qos),
          el('td', {}, s.shareGroup || ''),
          el('td', {}, s.noLocal ? 'yes' : ''),
          el('td', {}, s.retainAsPublished ? 'yes' : ''),
        ),
      ),
    );
  }

  // ---- topic tree ----

  let topicPrefix = '';

  async function refreshTopics() {
    const data = await api('GET', '/topics?prefix=' + encodeURIComponent(topicPrefix));
    const crumbs = [el('a', { onclick: () => openTopic('') }, '(root)')];
    if (topicPrefix) {
      const levels = topicPrefix.split('/');
      levels.forEach((level, i) => {
        const path = levels.slice(0, i + 1).join('/');
        crumbs.push(document.createTextNode('/ '), el('a', { onclick: () => openTopic(path) }, level || '(empty)'));
      });
    }
    $('topic-path').replaceChildren(...crumbs);
    $('topic-children').replaceChildren(
      ...(data.children.length === 0
        ? [el('li', { class: 'muted' }, 'No retained topics below')]
        : data.children.map((c) =>
            el(
              'li',
              { class: c.retained ? 'retained' : '', 'data-topic': c.path, onclick: () => openTopic(c.path) },
              el('span', { class: 'name' }, c.name || '(empty)'),
              el('span', { class: 'badge' }, c.topics + (c.topics === 1 ? ' topic' : ' topics')),
            ),
          )),
    );
    const panel = $('topic-message');
    const m = data.message;
    if (!m) {
      panel.replaceChildren(el('p', { class: 'muted' }, topicPrefix ? 'No retained message on this topic.' : 'Pick a topic.'));
      return;
    }
    panel.replaceChildren(
      el('div', {}, el('strong', {}, m.topic)),
      el('div', { class: 'muted' }, 'QoS ' + m.qos + ' · ' + m.bytes + ' bytes' + (m.contentType ? ' · ' + m.contentType : '') + (m.payloadEncoding === 'base64' ? ' · base64' : '')),
      el('pre', { 'data-retained-payload': m.topic }, m.payload + (m.truncated ? ' …' : '')),
      el('button', { class: 'danger', onclick: () => deleteRetained(m.topic) }, 'Delete retained message'),
    );
  }

  function openTopic(path) {
    topicPrefix = path;
    refreshTopics().catch(showError);
  }

  async function deleteRetained(topic) {
    await api('DELETE', '/retained?topic=' + encodeURIComponent(topic));
    setStatus('Deleted retained message on ' + topic);
    await refreshTopics();
  }

  // ---- live messages (SSE) ----

  let source = null;

  function startLive(ev) {
    ev.preventDefault();
    stopLive();
    const filter = $('live-filter').value.trim() || '#';
    let url = '/api/v1/stream?filter=' + encodeURIComponent(filter);
    if (token) url += '&access_token=' + encodeURIComponent(token);
    source = new EventSource(url);
    $('live-state').textContent = 'connecting…';
    $('live-start').disabled = true;
    $('live-stop').disabled = false;
    source.addEventListener('ready', () => ($('live-state').textContent = 'watching ' + filter));
    source.addEventListener('dropped', (e) => {
      const n = JSON.parse(e.data).count;
      addLiveRow(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, n + ' messages skipped (too fast for this page)')));
    });
    source.addEventListener('message', (e) => {
      const r = JSON.parse(e.data);
      addLiveRow(
        el(
          'tr',
          { 'data-live-topic': r.topic },
          el('td', {}, new Date(r.ts).toLocaleTimeString()),
          el('td', {}, r.topic),
          el('td', { class: 'num' }, r.qos),
          el('td', {}, r.retain ? 'yes' : ''),
          el('td', {}, r.client_id || '(broker)'),
          el('td', { class: 'payload' }, r.payload_encoding === 'base64' ? '[base64] ' + r.payload : r.payload),
        ),
      );
    });
    source.onerror = () => ($('live-state').textContent = 'reconnecting…');
  }

  function addLiveRow(row) {
    const body = $('live-rows');
    body.prepend(row);
    while (body.children.length > LIVE_MAX_ROWS) body.lastElementChild.remove();
  }

  function stopLive() {
    if (source) source.close();
    source = null;
    $('live-start').disabled = false;
    $('live-stop').disabled = true;
    $('live-state').textContent = '';
  }

  // ---- bans ----

  async function refreshBans() {
    const data = await api('GET', '/bans');
    $('bans-unavailable').hidden = data.available;
    $('ban-form').hidden = !data.available;
    $('ban-rows').replaceChildren(
      ...data.items.map((b) =>
        el(
          'tr',
          {},
          el('td', {}, b.kind),
          el('td', {}, b.value),
          el('td', {}, b.reason || ''),
          el('td', {}, b.expiresAt || 'never'),
          el('td', {}, el('button', { class: 'danger', onclick: () => unban(b.kind, b.value) }, 'Remove')),
        ),
      ),
    );
  }

  async function addBan(ev) {
    ev.preventDefault();
    const body = { kind: $('ban-kind').value, value: $('ban-value').value.trim() };
    const reason = $('ban-reason').value.trim();
    if (reason) body.reason = reason;
    try {
      const r = await api('POST', '/bans', body);
      setStatus('Banned ' + body.value + (r.disconnected ? ' (' + r.disconnected + ' disconnected)' : ''));
      $('ban-value').value = '';
      $('ban-reason').value = '';
    } catch (err) {
      setStatus('Ban failed: ' + err.message, true);
    }
    await refreshBans();
  }

  async function unban(kind, value) {
    await api('DELETE', '/bans/' + encodeURIComponent(kind) + '/' + encodeURIComponent(value));
    await refreshBans();
  }

  // ---- bridges ----

  async function refreshBridges() {
    const data = await api('GET', '/bridges');
    $('bridges-empty').hidden = data.items.length > 0;
    $('bridge-rows').replaceChildren(
      ...data.items.map((b) => el('tr', {}, el('td', {}, b.name), el('td', {}, b.state), el('td', {}, b.remote || ''))),
    );
  }

  // ---- navigation and polling ----

  const refreshers = {
    overview: refreshOverview,
    clients: refreshClients,
    subscriptions: refreshSubscriptions,
    topics: refreshTopics,
    live: async () => {},
    bans: refreshBans,
    bridges: refreshBridges,
  };
  let current = 'overview';

  function showError(err) {
    setStatus(err.status === 401 ? 'Not authorized: open the dashboard with ?access_token=… or valid credentials' : 'Error: ' + err.message, true);
  }

  function show(view) {
    if (!(view in refreshers)) view = 'overview';
    current = view;
    for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== 'view-' + view;
    for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.view === view);
    refresh();
  }

  async function refresh() {
    try {
      // The overview keeps its history while other views are open.
      if (current !== 'overview') await refreshOverview();
      await refreshers[current]();
      if ($('status').classList.contains('error')) setStatus('');
      document.body.dataset.loaded = current;
    } catch (err) {
      showError(err);
    }
  }

  window.addEventListener('hashchange', () => show(location.hash.slice(1)));
  window.addEventListener('resize', () => current === 'overview' && drawOverview());
  $('client-search').addEventListener('input', () => refreshClients().catch(showError));
  $('sub-filter').addEventListener('input', () => refreshSubscriptions().catch(showError));
  $('sub-topic').addEventListener('input', () => refreshSubscriptions().catch(showError));
  $('live-form').addEventListener('submit', startLive);
  $('live-stop').addEventListener('click', stopLive);
  $('live-clear').addEventListener('click', () => $('live-rows').replaceChildren());
  $('ban-form').addEventListener('submit', addBan);
  setInterval(() => {
    if (current !== 'live' && current !== 'topics') refresh();
    else refreshOverview().catch(() => {});
  }, POLL_MS);
  show(location.hash.slice(1) || 'overview');
})();
