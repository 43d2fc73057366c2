// loadplan web UI: one page, no dependencies. State comes from /api/state and the
// server-sent events of /api/events (one per tick); charts are drawn on canvas here.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get('token');
  const WS_KINDS = new Set(['WS', 'send', 'receive', 'silence', 'close']);
  let state = null;
  let history = [];
  let run = -1;
  let formFilled = false;
  // The Users box follows the live count until the user types in it (then it is theirs
  // until they send it or a new run starts).
  let usersEdited = false;
  let usersRun = -1;
  // Statistics tables: the column sorted on (-1: the plan's order) and the direction.
  const sortBy = { col: -1, dir: 1 };

  function withToken(url) {
    return token ? url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : url;
  }

  async function api(path, body) {
    const opts = { headers: {} };
    if (token) opts.headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) {
      opts.method = 'POST';
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) throw new Error((data && data.error) || ('HTTP ' + r.status));
    return data;
  }

  function say(text, info) {
    const m = $('message');
    m.textContent = text || '';
    m.hidden = !text;
    m.classList.toggle('info', !!info);
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v)) ? '-' : Number(v).toFixed(d === undefined ? 1 : d);
  const ms = (v) => (v === null || v === undefined) ? '-' : (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

  function clock(secs) {
    const s = Math.floor(secs || 0);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = (h ? String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
    return h ? h + ':' + mm : mm;
  }

  // ---- state -------------------------------------------------------------------------

  function renderState(s) {
    state = s;
    $('plan-name').textContent = s.plan ? s.plan.name : '';
    const target = [];
    if (s.host) target.push('→ ' + s.host);
    if (s.profile && s.profile.name) target.push('profile ' + s.profile.name);
    $('run-target').textContent = target.join(' · ');
    const st = $('status');
    st.textContent = s.status;
    st.className = 'badge ' + s.status;
    $('users-live').textContent = s.users;
    let el2 = clock(s.elapsed_secs);
    if (s.planned_secs) el2 += ' / ' + clock(s.planned_secs);
    $('elapsed').textContent = el2;
    const live = s.status === 'running' || s.status === 'stopping';
    const canStart = s.can_start !== false && (s.status === 'idle' || s.status === 'stopped');
    $('start-panel').hidden = !canStart;
    $('control-panel').hidden = !live;
    const cu = $('c-users');
    if (s.run !== usersRun) { usersRun = s.run; usersEdited = false; }
    if (live && !usersEdited && document.activeElement !== cu) cu.value = s.users;
    const open = s.profile && s.profile.model === 'open';
    $('users-form').hidden = !!open;
    $('rate-form').hidden = !open;
    for (const b of ['btn-stop', 'btn-users', 'btn-rate', 'btn-reset']) $(b).disabled = s.status !== 'running';
    renderWorkers(s.workers);
    // A distributed run: the master hands the users out; the UI may only stop it.
    if (s.workers) {
      $('users-form').hidden = true;
      $('rate-form').hidden = true;
      $('btn-reset').disabled = true;
    }
    if (s.error) say(s.error);
    if (s.profiles && !formFilled) fillForm(s);
    renderVerdict(s, null);
  }

  // Distributed runs (`loadplan master --ui`): the worker table; hidden otherwise.
  function renderWorkers(workers) {
    const dist = Array.isArray(workers);
    $('tab-workers').hidden = !dist;
    if (!dist) return;
    const lost = workers.filter(w => w.state === 'lost').length;
    $('workers-count').textContent = workers.length + (lost ? ' (' + lost + ' lost)' : '');
    const body = $('workers-table').tBodies[0];
    body.textContent = '';
    for (const w of workers) {
      const tr = body.insertRow();
      tr.appendChild(el('td', String(w.index)));
      tr.appendChild(el('td', w.name, 'l'));
      tr.appendChild(el('td', w.state, 'l ' + (w.state === 'lost' ? 'fail' : '')));
      tr.appendChild(el('td', String(w.users)));
      tr.appendChild(el('td', w.rate.toFixed(1)));
      tr.appendChild(el('td', String(w.requests)));
      tr.appendChild(el('td', String(w.failures)));
      tr.appendChild(el('td', w.last_heard_secs.toFixed(1) + ' s ago'));
    }
  }

  function fillForm(s) {
    formFilled = true;
    const sel = $('f-profile');
    sel.textContent = '';
    sel.appendChild(el('option', '(none: 1 user)', null)).value = '';
    for (const p of s.profiles) sel.appendChild(el('option', p)).value = p;
    if (s.defaults && s.defaults.profile) sel.value = s.defaults.profile;
    else if (s.profiles.length) sel.value = s.profiles[0];
    if (s.defaults && s.defaults.host) $('f-host').placeholder = s.defaults.host;
  }

  function renderVerdict(s, stats) {
    const v = $('verdict');
    if (s.status !== 'stopped' || s.passed === null || s.passed === undefined) { v.hidden = true; return; }
    v.hidden = false;
    const b = $('verdict-badge');
    b.textContent = s.passed ? 'passed' : 'failed';
    b.className = 'badge ' + (s.passed ? 'pass' : 'fail');
    $('verdict-text').textContent = s.aborted_by ? 'aborted by threshold ' + s.aborted_by : 'run ended';
    if (stats) {
      fillThresholds(stats.thresholds || []);
      const reasons = s.passed ? [] : (stats.reasons || []);
      const ul = $('verdict-reasons');
      ul.textContent = '';
      for (const r of reasons) ul.appendChild(el('li', r));
      $('verdict-why').hidden = reasons.length === 0;
    }
  }

  function fillThresholds(list) {
    const body = $('verdict-table').tBodies[0];
    body.textContent = '';
    $('verdict-table').hidden = list.length === 0;
    for (const t of list) {
      const tr = el('tr');
      const td = el('td', null, 'l');
      td.appendChild(el('span', t.passed ? 'pass' : 'fail', 'badge ' + (t.passed ? 'pass' : 'fail')));
      tr.appendChild(td);
      tr.appendChild(el('td', t.rule, 'l'));
      tr.appendChild(el('td', t.shown));
      tr.appendChild(el('td', t.limit));
      body.appendChild(tr);
    }
  }

  // ---- statistics ------------------------------------------------------------------

  const COLUMNS = [
    ['Type', 'l', (r) => r.kind], ['Name', 'l', (r) => r.name],
    ['# reqs', '', (r) => r.count], ['# fails', '', (r) => r.failures],
    ['Median ms', '', (r) => ms(r.latency_ms && r.latency_ms.p50)],
    ['95% ms', '', (r) => ms(r.latency_ms && r.latency_ms.p95)],
    ['99% ms', '', (r) => ms(r.latency_ms && r.latency_ms.p99)],
    ['Average ms', '', (r) => ms(r.latency_ms && r.latency_ms.mean)],
    ['Min ms', '', (r) => ms(r.latency_ms && r.latency_ms.min)],
    ['Max ms', '', (r) => ms(r.latency_ms && r.latency_ms.max)],
    ['Avg size B', '', (r) => r.count ? Math.round(r.bytes_in / r.count) : '-'],
    ['RPS (last 10 s)', '', (r) => fmt(r.current_rate)],
    ['Fails/s (last 10 s)', '', (r) => fmt(r.current_failure_rate)],
  ];

  // The value a column sorts on: numbers as numbers ('-' last), text as text.
  function sortKey(r, i) {
    const v = COLUMNS[i][2](r);
    if (typeof v === 'number') return v;
    const n = Number(v);
    return v !== '-' && v !== '' && !Number.isNaN(n) ? n : (v === '-' ? null : String(v));
  }

  function sorted(rows) {
    if (sortBy.col < 0) return rows;
    const i = sortBy.col;
    return rows.map((r, k) => [sortKey(r, i), k, r]).sort((a, b) => {
      if (a[0] === null || b[0] === null) return (a[0] === null) - (b[0] === null) || a[1] - b[1];
      const c = typeof a[0] === 'number' && typeof b[0] === 'number' ? a[0] - b[0] : String(a[0]).localeCompare(String(b[0]));
      return c * sortBy.dir || a[1] - b[1];
    }).map((x) => x[2]);
  }

  function headers(table) {
    const tr = el('tr');
    COLUMNS.forEach(([name, cls], i) => {
      const th = el('th', null, (cls || '') + ' sortable');
      const b = el('button', name);
      b.type = 'button';
      b.title = 'sort by ' + name;
      b.addEventListener('click', () => {
        if (sortBy.col === i) sortBy.dir = -sortBy.dir; else { sortBy.col = i; sortBy.dir = i < 2 ? 1 : -1; }
        refresh();
      });
      th.appendChild(b);
      tr.appendChild(th);
    });
    table.tHead.appendChild(tr);
  }

  function fillTable(table, rows, total) {
    if (!table.tHead.rows.length) headers(table);
    Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
      th.setAttribute('aria-sort', sortBy.col === i ? (sortBy.dir > 0 ? 'ascending' : 'descending') : 'none');
    });
    rows = sorted(rows);
    const body = table.tBodies[0];
    body.textContent = '';
    const add = (r, cls) => {
      const tr = el('tr', null, cls);
      tr.dataset.name = r.kind + ' ' + r.name;
      for (const [, c, f] of COLUMNS) {
        const td = el('td', f(r), c || null);
        if (f === COLUMNS[3][2] && r.failures > 0) td.classList.add('bad');
        tr.appendChild(td);
      }
      body.appendChild(tr);
    };
    for (const r of rows) add(r);
    if (total) add(total, 'total');
  }

  function renderStats(stats) {
    if (!stats || !stats.aggregated) return;
    const rows = stats.steps || [];
    const http = rows.filter((r) => !WS_KINDS.has(r.kind));
    const ws = rows.filter((r) => WS_KINDS.has(r.kind));
    // HTTP requests and WebSocket messages are separate totals (docs/metrics.md).
    const totals = stats.totals || { http: stats.aggregated, ws: null };
    fillTable($('stats-table'), http, totals.http);
    fillStepPicker(rows);
    fillTable($('ws-table'), ws, ws.length ? totals.ws : null);
    $('no-ws').hidden = ws.length > 0;
    $('ws-table').hidden = ws.length === 0;
    const a = totals.http;
    $('ws-total').textContent = totals.ws ? totals.ws.count : 0;
    $('requests-total').textContent = a.count;
    $('rps-live').textContent = fmt(a.current_rate);
    $('failures-live').textContent = (100 * (a.error_rate || 0)).toFixed(1) + '%';
    $('p95-live').textContent = ms(a.latency_ms && a.latency_ms.p95);
    const errs = stats.errors || [];
    const body = $('failures-table').tBodies[0];
    body.textContent = '';
    let n = 0;
    for (const e of errs) {
      n += e.count;
      const tr = el('tr');
      tr.appendChild(el('td', e.count));
      tr.appendChild(el('td', e.kind + ' ' + e.name, 'l'));
      tr.appendChild(el('td', e.error_kind, 'l'));
      tr.appendChild(el('td', e.message, 'msg'));
      body.appendChild(tr);
    }
    renderChecks(rows, stats.checks);
    renderTags(stats.breakdown || []);
    $('failures-table').hidden = errs.length === 0;
    $('no-failures').hidden = errs.length > 0;
    $('failures-count').textContent = n ? String(n) : '';
    if (state) renderVerdict(state, stats);
  }

  // By scenario, group and tag: shown when the plan has more than one such row.
  function renderTags(rows) {
    const body = $('tags-table').tBodies[0];
    body.textContent = '';
    const shown = rows.length > 1;
    for (const b of shown ? rows : []) {
      const s = b.stats;
      const l = s.latency_ms;
      const tr = el('tr');
      tr.dataset.name = b.by + ' ' + (b.key ? b.key + '=' : '') + b.value;
      for (const c of [b.by, b.key, b.value]) tr.appendChild(el('td', c, 'l'));
      tr.appendChild(el('td', s.count));
      tr.appendChild(el('td', s.failures, s.failures > 0 ? 'bad' : null));
      tr.appendChild(el('td', fmt(s.rate)));
      for (const v of [l && l.p50, l && l.p95, l && l.p99, l && l.max, l && l.mean]) tr.appendChild(el('td', ms(v)));
      body.appendChild(tr);
    }
    $('tags-table').hidden = !shown;
    $('no-tags').hidden = shown;
  }

  function renderChecks(rows, totals) {
    const with_ = rows.filter((r) => r.has_checks);
    const body = $('checks-table').tBodies[0];
    body.textContent = '';
    const add = (kind, name, passed, failed, cls) => {
      const tr = el('tr', null, cls);
      tr.dataset.name = kind + ' ' + name;
      tr.appendChild(el('td', kind, 'l'));
      tr.appendChild(el('td', name, 'l'));
      tr.appendChild(el('td', passed));
      tr.appendChild(el('td', failed, failed > 0 ? 'bad' : null));
      const n = passed + failed;
      tr.appendChild(el('td', n ? (100 * passed / n).toFixed(1) + '%' : '-'));
      body.appendChild(tr);
    };
    for (const r of with_) add(r.kind, r.name, r.checks_passed, r.checks_failed);
    if (with_.length && totals) add('', 'All checks', totals.passed, totals.failed, 'total');
    $('checks-table').hidden = with_.length === 0;
    $('no-checks').hidden = with_.length > 0;
    $('checks-failed').textContent = totals && totals.failed ? String(totals.failed) : '';
  }

  // ---- charts --------------------------------------------------------------------------

  // A tick step of 1, 2 or 5 × 10ⁿ, at least `raw` (and at least 1 for whole numbers:
  // no 12.5 users).
  function niceStep(raw, whole) {
    if (!(raw > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = 10 * p;
    for (const m of [1, 2, 5]) if (m * p >= raw) { step = m * p; break; }
    return whole ? Math.max(1, Math.round(step)) : step;
  }

  // Time ticks on round seconds, minutes or hours (no 0:22 / 0:45).
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function timeStep(span) {
    for (const s of TIME_STEPS) if (span / s <= 6) return s;
    return Math.ceil(span / 6 / 86400) * 86400;
  }

  const label = (v) => {
    if (v >= 100 || Number.isInteger(v)) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return String(Number(v.toFixed(3)));
  };

  function chart(canvas, series) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const L = 46, R = 10, T = 22, B = 22;
    const pw = w - L - R, ph = h - T - B;
    let tmax = 1, ymax = 0;
    for (const s of series) for (const [t, y] of s.points) {
      if (t > tmax) tmax = t;
      if (y !== null && y > ymax) ymax = y;
    }
    const whole = series.every((s) => s.whole);
    const ystep = niceStep((ymax || 1) / 4, whole);
    ymax = Math.max(1, Math.ceil(ymax / ystep)) * ystep;
    const x = (t) => L + (t / tmax) * pw;
    const y = (v) => T + ph - (v / ymax) * ph;
    g.font = '11px system-ui, sans-serif';
    g.strokeStyle = '#edf2f7';
    g.fillStyle = '#4a5568';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let k = 0; k * ystep <= ymax + ystep / 2; k++) {
      const v = k * ystep;
      g.beginPath(); g.moveTo(L, y(v)); g.lineTo(L + pw, y(v)); g.stroke();
      g.fillText(label(v), L - 4, y(v));
    }
    g.textBaseline = 'top';
    const tstep = timeStep(tmax);
    for (let t = 0; t <= tmax + 1e-9; t += tstep) {
      g.textAlign = t === 0 ? 'left' : x(t) > L + pw - 20 ? 'right' : 'center';
      g.fillText(clock(t), x(t), T + ph + 5);
    }
    // A tooltip: the values at the time under the pointer.
    canvas.title = '';
    canvas.onmousemove = (ev) => {
      const r = canvas.getBoundingClientRect();
      const t = ((ev.clientX - r.left - L) / pw) * tmax;
      const lines = [];
      for (const s of series) {
        let best = null;
        for (const p of s.points) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
        if (best) {
          if (!lines.length) lines.push(clock(best[0]));
          lines.push(s.label + ': ' + (best[1] === null || best[1] === undefined ? '-' : label(best[1])));
        }
      }
      canvas.title = lines.join('\n');
    };
    g.strokeStyle = '#a0aec0';
    g.beginPath(); g.moveTo(L, T); g.lineTo(L, T + ph); g.lineTo(L + pw, T + ph); g.stroke();
    let lx = L;
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    // Last series first: p50 on top of p95 on top of p99 (equal at low traffic, the lower
    // percentile stays visible).
    for (const s of [...series].reverse()) {
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.beginPath();
      let pen = false;
      // A point with no neighbour draws no line: it gets a dot.
      const dots = [];
      let run = [];
      const end = () => { if (run.length === 1) dots.push(run[0]); run = []; };
      for (const [t, v] of s.points) {
        if (v === null || v === undefined) { pen = false; end(); continue; }
        if (pen) g.lineTo(x(t), y(v)); else g.moveTo(x(t), y(v));
        pen = true;
        run.push([x(t), y(v)]);
      }
      end();
      g.stroke();
      g.fillStyle = s.color;
      for (const [dx, dy] of dots) { g.beginPath(); g.arc(dx, dy, 3, 0, 2 * Math.PI); g.fill(); }
    }
    for (const s of series) {
      g.fillStyle = s.color;
      g.fillRect(lx, 6, 10, 10);
      g.fillStyle = '#2d3748';
      g.fillText(s.label, lx + 14, 11);
      lx += 24 + g.measureText(s.label).width;
    }
  }

  // The step picker: every row the table shows (HTTP and WebSocket), in its order.
  function fillStepPicker(rows) {
    const sel = $('chart-step');
    const want = rows.map((r) => r.kind + ' ' + r.name);
    const have = Array.from(sel.options).slice(1).map((o) => o.value);
    if (JSON.stringify(want) === JSON.stringify(have)) return;
    const keep = sel.value;
    sel.length = 1;
    for (const name of want) sel.appendChild(el('option', name)).value = name;
    sel.value = want.includes(keep) ? keep : '';
  }

  function drawCharts() {
    if ($('pane-charts').hidden) return;
    const step = $('chart-step').value;
    for (const c of document.querySelectorAll('.chart-of')) c.textContent = step ? '· ' + step : '· all steps';
    // One step: its own figures per tick (a tick in which it recorded nothing is a gap).
    const of = (p) => (step ? (p.steps || []).find((s) => s.step === step) || null : p);
    const pts = (f) => history.map((p) => { const q = of(p); return [p.t_secs, q ? f(q) : null]; });
    chart($('chart-rps'), [{ label: 'requests/s', color: '#2b6cb0', points: pts((p) => p.rate) }]);
    chart($('chart-fails'), [{ label: 'failures/s', color: '#c53030', points: pts((p) => p.failure_rate) }]);
    chart($('chart-latency'), [
      { label: 'p50', color: '#2b6cb0', points: pts((p) => p.p50_ms) },
      { label: 'p95', color: '#dd6b20', points: pts((p) => p.p95_ms) },
      { label: 'p99', color: '#c53030', points: pts((p) => p.p99_ms) },
    ]);
    chart($('chart-users'), [{ label: 'users', color: '#2f855a', whole: true, points: history.map((p) => [p.t_secs, p.users]) }]);
  }

  // ---- data flow -----------------------------------------------------------------------

  async function refresh() {
    try {
      const [s, stats] = await Promise.all([api('/api/state'), api('/api/stats')]);
      run = s.run;
      history = stats.history || [];
      renderState(s);
      renderStats(stats);
      drawCharts();
    } catch (e) {
      say('Cannot reach loadplan: ' + e.message);
    }
  }

  function onTick(ev) {
    const data = JSON.parse(ev.data);
    const s = data.state;
    if (state) s.can_start = state.can_start, s.profiles = state.profiles, s.defaults = state.defaults;
    if (s.run !== run) { refresh(); return; }
    renderState(s);
    if (data.stats) renderStats(data.stats);
    if (data.point) {
      if (data.history_len === history.length + 1) history.push(data.point);
      else { refresh(); return; }
    } else if (typeof data.history_len === 'number' && data.history_len < history.length) {
      history = [];
      refresh();
      return;
    }
    drawCharts();
  }

  function connect() {
    const es = new EventSource(withToken('/api/events'));
    es.addEventListener('tick', onTick);
    es.onopen = () => { if (state && !state.error) say(''); };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        say('Disconnected from loadplan (the run may have ended); reload to reconnect.', true);
      }
    };
  }

  // ---- actions --------------------------------------------------------------------------

  const num = (id) => { const v = $(id).value.trim(); return v === '' ? undefined : Number(v); };

  async function act(promise, done) {
    say('');
    try { const r = await promise; if (done) done(r); } catch (e) { say(e.message); }
  }

  $('start-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const open = $('f-open').checked;
    const body = { profile: $('f-profile').value || null };
    const host = $('f-host').value.trim();
    const dur = $('f-duration').value.trim();
    if (host) body.host = host;
    if (dur) body.duration = dur;
    if (open) body.arrival_rate = num('f-rate');
    else { body.users = num('f-users'); body.spawn_rate = num('f-spawn'); }
    history = [];
    act(api('/api/start', body), () => refresh());
  });
  for (const r of ['f-closed', 'f-open']) $(r).addEventListener('change', () => {
    const open = $('f-open').checked;
    document.querySelectorAll('.closed-only').forEach((n) => { n.hidden = open; });
    document.querySelectorAll('.open-only').forEach((n) => { n.hidden = !open; });
  });
  $('c-users').addEventListener('input', () => { usersEdited = true; });
  $('users-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const users = num('c-users');
    if (users === undefined) { say('Give the number of users.'); return; }
    act(api('/api/users', { users, spawn_rate: num('c-spawn') ?? null }), () => { usersEdited = false; });
  });
  $('rate-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const rate = num('c-rate');
    if (rate === undefined) { say('Give the arrival rate.'); return; }
    act(api('/api/rate', { rate }));
  });
  $('btn-stop').addEventListener('click', () => act(api('/api/stop', {})));
  $('btn-reset').addEventListener('click', () => act(api('/api/reset', {}), () => { history = []; refresh(); }));

  for (const b of document.querySelectorAll('.tabs button')) {
    b.addEventListener('click', () => {
      for (const o of document.querySelectorAll('.tabs button')) o.classList.toggle('active', o === b);
      for (const p of document.querySelectorAll('.tab')) p.hidden = p.id !== 'pane-' + b.dataset.tab;
      drawCharts();
    });
  }
  for (const a of document.querySelectorAll('.downloads a')) a.href = withToken(a.getAttribute('href'));
  window.addEventListener('resize', drawCharts);
  $('chart-step').addEventListener('change', drawCharts);

  refresh().then(connect);
})();
