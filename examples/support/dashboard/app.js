// The activity dashboard. Plain JavaScript, no build step, no dependencies.
//
// Money arrives as exact decimal strings ("0.0000325"). The page never adds money up: totals
// come from the server (re-read after live records) and are only *formatted* here, digit by
// digit with BigInt. Chart bar heights are the one place a money value becomes a float, for
// geometry only.
'use strict';

(() => {
  const KEY_STORAGE = 'tower-activity.api-key';
  const STATS = '/user/activity/stats';
  const LOG = '/user/activity/log';
  const STREAM = '/user/activity/stream';
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    node.append(...children);
    return node;
  };
  const svg = (tag, attrs = {}, ...children) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    node.append(...children);
    return node;
  };
  const svgTitle = (text) => svg('title', {}, text);

  const state = {
    key: null,
    stats: null,
    metric: 'spend',
    log: { page: 1, limit: 50, from: '', to: '', model: '', provider: '' },
    logPage: null,
    shown: new Set(), // ids of the rows on screen: a live record already there is skipped
    statsSeq: 0,
    logSeq: 0,
    stream: null,
    retryDelay: 1000,
    retryTimer: 0,
    refreshTimer: 0,
  };

  // ---- Exact decimals (strings in, strings out) ------------------------------------------

  /** `"12.5"` → `{ v: 125n, scale: 1 }`; null for anything that is not a plain decimal. */
  function parseDecimal(text) {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text ?? '').trim());
    if (!m) return null;
    const frac = m[3] || '';
    const v = BigInt(m[2] + frac);
    return { v: m[1] ? -v : v, scale: frac.length };
  }

  /** Rounds half away from zero to `dp` decimal places. */
  function roundDecimal(d, dp) {
    if (d.scale <= dp) return d;
    const factor = 10n ** BigInt(d.scale - dp);
    const neg = d.v < 0n;
    const abs = neg ? -d.v : d.v;
    let q = abs / factor;
    if ((abs % factor) * 2n >= factor) q += 1n;
    return { v: neg ? -q : q, scale: dp };
  }

  /** Integer and fraction digits of a non-negative decimal. */
  function digits(d) {
    const s = d.v.toString().padStart(d.scale + 1, '0');
    return [s.slice(0, s.length - d.scale), s.slice(s.length - d.scale)];
  }

  const group = (intDigits) => intDigits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

  /**
   * Dollars for reading: 2 decimals from $1 up; below that 4 significant digits (at least 2
   * decimals), so $0.0000325 stays $0.0000325 and is never shown as $0.00.
   */
  function formatUsd(text) {
    const d = parseDecimal(text);
    if (!d) return '–';
    const neg = d.v < 0n;
    const abs = { v: neg ? -d.v : d.v, scale: d.scale };
    const [int, frac] = digits(abs);
    let dp = 2;
    if (int === '0') {
      const lead = frac.search(/[1-9]/);
      if (lead >= 0) dp = Math.max(2, lead + 4);
    }
    const [rInt, rFrac] = digits(roundDecimal(abs, dp));
    let shown = rFrac.padEnd(2, '0');
    while (shown.length > 2 && shown.endsWith('0')) shown = shown.slice(0, -1);
    return `${neg ? '−' : ''}$${group(rInt)}.${shown}`;
  }

  /** The exact value, for tooltips: every digit the server sent. */
  const exactUsd = (text) => (parseDecimal(text) ? `$${text} exactly` : '');

  const intFormat = new Intl.NumberFormat('en-US');
  const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
  const fmtInt = (n) => (n === null || n === undefined ? '–' : intFormat.format(n));
  const fmtMs = (ms) => {
    if (ms === null || ms === undefined) return '–';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  };
  const dayFormat = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
  const longDayFormat = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  const utcDay = (ymd) => new Date(`${ymd}T00:00:00Z`);
  const todayUtc = () => new Date().toISOString().slice(0, 10);

  // ---- API ---------------------------------------------------------------------------------

  class AuthError extends Error {}
  class ApiError extends Error {}

  async function api(path, params = {}) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params)) {
      if (v !== '' && v !== null && v !== undefined) url.searchParams.set(k, v);
    }
    let res;
    try {
      res = await fetch(url, {
        headers: { Authorization: `Bearer ${state.key}`, Accept: 'application/json' },
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(`Could not reach the server (${e.message}).`);
    }
    if (res.status === 401 || res.status === 403) throw new AuthError(await errorText(res));
    if (!res.ok) throw new ApiError(`${await errorText(res)} (HTTP ${res.status})`);
    return res.json();
  }

  async function errorText(res) {
    const text = await res.text().catch(() => '');
    try {
      const body = JSON.parse(text);
      const e = body.error ?? body;
      return (typeof e === 'string' ? e : e.message) || body.message || res.statusText;
    } catch {
      return text.trim().slice(0, 300) || res.statusText || 'The request failed';
    }
  }

  // ---- Sign in and out ---------------------------------------------------------------------

  function showSignIn(message = '') {
    stopStream();
    $('dashboard').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('sign-in-error').textContent = message;
    $('api-key').setAttribute('aria-invalid', message ? 'true' : 'false');
    $('api-key').focus();
  }

  function signOut(message = '') {
    state.key = null;
    localStorage.removeItem(KEY_STORAGE);
    state.stats = null;
    state.logPage = null;
    state.shown.clear();
    $('log-rows').replaceChildren();
    showSignIn(message);
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $('api-key').value.trim();
    if (!key) {
      showSignIn('Enter your API key.');
      return;
    }
    state.key = key;
    $('sign-in-error').textContent = 'Checking…';
    try {
      await api(STATS, { days: 1 });
    } catch (e) {
      state.key = null;
      showSignIn(e instanceof AuthError
        ? 'That API key was not accepted. Check it and try again.'
        : e.message);
      return;
    }
    localStorage.setItem(KEY_STORAGE, key);
    $('api-key').value = '';
    openDashboard();
  }

  function openDashboard() {
    $('sign-in').hidden = true;
    $('dashboard').hidden = false;
    $('sign-out').hidden = false;
    hideBanner();
    loadAll();
    connectStream();
  }

  function authFailed() {
    signOut('Your API key is no longer accepted. Sign in again.');
  }

  function handle(error) {
    if (error instanceof AuthError) authFailed();
    else showBanner(error.message);
  }

  function showBanner(text) {
    $('banner-text').textContent = text;
    $('banner').hidden = false;
  }
  function hideBanner() {
    $('banner').hidden = true;
  }

  // ---- Loading -----------------------------------------------------------------------------

  function statsParams() {
    const range = $('range').value;
    if (range !== 'custom') return { days: range };
    return { from: $('range-from').value, to: $('range-to').value };
  }

  async function loadStats() {
    const seq = ++state.statsSeq;
    const stats = await api(STATS, statsParams());
    if (seq !== state.statsSeq || !state.key) return;
    state.stats = stats;
    renderStats();
  }

  /** A local calendar day as the instant it starts (the API takes RFC 3339 instants). */
  function localDayStart(ymd, plusDays = 0) {
    const [y, m, d] = ymd.split('-').map(Number);
    return new Date(y, m - 1, d + plusDays).toISOString();
  }

  function logParams() {
    const f = state.log;
    return {
      limit: f.limit,
      page: f.page,
      from: f.from && localDayStart(f.from),
      to: f.to && localDayStart(f.to, 1),
      model: f.model,
      provider: f.provider,
    };
  }

  async function loadLog() {
    const seq = ++state.logSeq;
    $('log-table').setAttribute('aria-busy', 'true');
    try {
      const page = await api(LOG, logParams());
      if (seq !== state.logSeq || !state.key) return;
      state.logPage = page;
      renderLog();
    } finally {
      if (seq === state.logSeq) $('log-table').removeAttribute('aria-busy');
    }
  }

  async function loadAll() {
    hideBanner();
    try {
      await Promise.all([loadStats(), loadLog()]);
    } catch (e) {
      handle(e);
    }
  }

  /** Re-reads the stats (and the log when `withLog`) soon, once for a burst of live records. */
  function refreshSoon(withLog = false) {
    state.refreshLog ||= withLog;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(() => {
      const log = state.refreshLog;
      state.refreshLog = false;
      if (!state.key) return;
      (log ? loadAll() : loadStats().catch(handle));
    }, 250);
  }

  // ---- Totals and charts -------------------------------------------------------------------

  function setMoney(node, text) {
    node.textContent = formatUsd(text);
    node.title = exactUsd(text);
    node.dataset.exact = text ?? '';
  }

  function renderStats() {
    const s = state.stats;
    $('total-requests').textContent = fmtInt(s.total_requests);
    $('total-tokens').textContent = fmtInt(s.total_tokens);
    setMoney($('total-spend'), s.total_spend);
    setMoney($('avg-cost'), s.avg_cost_per_request);
    const from = longDayFormat.format(utcDay(s.from));
    const to = longDayFormat.format(utcDay(s.to));
    $('range-label').textContent = s.from === s.to ? `${to} (UTC)` : `${from} – ${to} (UTC days)`;
    renderDaily();
    renderBreakdown($('by-model'), s.by_model, 'model');
    renderBreakdown($('by-provider'), s.by_provider, 'provider');
    fillOptions($('log-model'), Object.keys(s.by_model), 'All models');
    fillOptions($('log-provider'), Object.keys(s.by_provider), 'All providers');
  }

  const METRICS = {
    spend: { name: 'spend', value: (d) => Number(d.spend), label: (d) => formatUsd(d.spend), axis: axisUsd },
    tokens: { name: 'tokens', value: (d) => d.tokens, label: (d) => `${fmtInt(d.tokens)} tokens`, axis: (v) => compactFormat.format(v) },
    requests: { name: 'requests', value: (d) => d.requests, label: (d) => `${fmtInt(d.requests)} requests`, axis: (v) => compactFormat.format(v) },
  };

  /** An axis value without exponent notation (`0.0000002`, not `2e-7`). */
  function axisNumber(v, decimals) {
    return Number(v.toFixed(decimals)).toLocaleString('en-US', { maximumFractionDigits: decimals });
  }

  function axisUsd(v, decimals) {
    return v === 0 ? '$0' : `$${axisNumber(v, decimals)}`;
  }

  /**
   * Gridlines for values up to `max`: a step of 1, 2 or 5 times a power of ten and as many
   * steps (at most 5) as reach `max`.
   */
  function axis(max) {
    if (!(max > 0)) return { step: 1, count: 4, decimals: 0 };
    const rough = max / 4;
    const power = Math.floor(Math.log10(rough));
    const mantissa = [1, 2, 5, 10].find((m) => m * 10 ** power >= rough);
    const step = mantissa * 10 ** power;
    return { step, count: Math.max(1, Math.ceil(max / step - 1e-9)), decimals: Math.max(0, -power) };
  }

  /** The pixel width of `node`'s content, so that charts draw text at its real size. */
  const widthOf = (node, fallback) => Math.round(node.clientWidth || fallback);

  function renderDaily() {
    const s = state.stats;
    const metric = METRICS[state.metric];
    $('daily-metric-name').textContent = metric.name;
    const days = s.daily_stats;
    const values = days.map(metric.value);
    const ticks = axis(Math.max(0, ...values));
    const top = ticks.step * ticks.count;
    const W = Math.max(280, widthOf($('daily-chart'), 720));
    const H = W < 560 ? 200 : 240, R = 8, T = 12, B = 26;
    const L = state.metric === 'spend' ? 16 + 7 * (ticks.decimals + 3) : 44;
    const plotW = W - L - R, plotH = H - T - B;
    const band = plotW / Math.max(1, days.length);
    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'daily-desc' });
    const busiest = days.reduce((best, d, i) => (values[i] > (best ? metric.value(best) : 0) ? d : best), null);
    const summary = `Daily ${metric.name}, ${s.from} to ${s.to}. ` + (busiest
      ? `Highest: ${metric.label(busiest)} on ${busiest.date}.`
      : 'No requests in this range.');
    chart.append(svg('desc', { id: 'daily-desc' }, summary));
    for (let i = 0; i <= ticks.count; i++) {
      const y = T + plotH - (plotH * i) / ticks.count;
      chart.append(
        svg('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }),
        svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, metric.axis(ticks.step * i, ticks.decimals)),
      );
    }
    // One date label per ~64 px.
    const every = Math.max(1, Math.ceil(days.length / Math.max(2, Math.floor(plotW / 64))));
    days.forEach((d, i) => {
      const h = (plotH * values[i]) / top;
      const x = L + i * band;
      const w = Math.max(1, band * 0.72);
      const tip = `${longDayFormat.format(utcDay(d.date))}: ${formatUsd(d.spend)} · ${fmtInt(d.requests)} requests · ${fmtInt(d.tokens)} tokens`;
      // A transparent full-height target so that small bars still show their tooltip.
      chart.append(svg('rect', { x, y: T, width: band, height: plotH, fill: 'transparent' }, svgTitle(tip)));
      if (h > 0) {
        chart.append(svg('rect', {
          class: 'bar', x: x + (band - w) / 2, y: T + plotH - Math.max(h, 1.5), width: w, height: Math.max(h, 1.5), rx: Math.min(3, w / 3),
        }, svgTitle(tip)));
      }
      if (i % every === 0) {
        chart.append(svg('text', { x: x + band / 2, y: H - 6, 'text-anchor': 'middle' }, dayFormat.format(utcDay(d.date))));
      }
    });
    if (!busiest) {
      chart.append(svg('text', { x: L + plotW / 2, y: T + plotH / 2, 'text-anchor': 'middle', class: 'empty-label' }, 'No requests in this range'));
    }
    const table = el('table', { class: 'daily-table' },
      el('caption', { class: 'visually-hidden', text: 'Daily totals' }),
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col', text: 'Day (UTC)' }),
        el('th', { scope: 'col', class: 'num', text: 'Requests' }),
        el('th', { scope: 'col', class: 'num', text: 'Tokens' }),
        el('th', { scope: 'col', class: 'num', text: 'Spend' }))),
      el('tbody', {}, ...days.slice().reverse().map((d) => el('tr', {},
        el('th', { scope: 'row', text: d.date }),
        el('td', { class: 'num', text: fmtInt(d.requests) }),
        el('td', { class: 'num', text: fmtInt(d.tokens) }),
        el('td', { class: 'num', text: formatUsd(d.spend), title: exactUsd(d.spend) })))));
    const details = el('details', { class: 'as-table' }, el('summary', { text: 'Show as a table' }),
      el('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Daily totals' }, table));
    const open = $('daily-chart').querySelector('details')?.open;
    details.open = Boolean(open);
    $('daily-chart').replaceChildren(chart, details);
  }

  function renderBreakdown(target, map, what) {
    const rows = Object.entries(map).sort(([an, a], [bn, b]) =>
      compareDecimal(b.cost, a.cost) || b.requests - a.requests || an.localeCompare(bn));
    if (rows.length === 0) {
      target.replaceChildren(el('p', { class: 'empty', text: 'No requests in this range.' }));
      return;
    }
    // Shares of spend when there is any, else of requests (unpriced models cost nothing).
    const bySpend = rows.some(([, b]) => (parseDecimal(b.cost)?.v ?? 0n) > 0n);
    const weight = (b) => (bySpend ? Number(b.cost) : b.requests);
    const total = rows.reduce((sum, [, b]) => sum + weight(b), 0) || 1;
    const W = Math.max(200, widthOf(target, 400)), rowH = 34, shown = rows.slice(0, 8);
    const chart = svg('svg', { viewBox: `0 0 ${W} ${shown.length * rowH}`, role: 'img', 'aria-label': `Share of ${bySpend ? 'spend' : 'requests'} by ${what}` });
    shown.forEach(([name, b], i) => {
      const y = i * rowH;
      const share = weight(b) / total;
      const value = bySpend ? formatUsd(b.cost) : `${fmtInt(b.requests)} req`;
      chart.append(
        svg('text', { x: 0, y: y + 12 }, name.length > W / 16 ? `${name.slice(0, Math.floor(W / 16) - 1)}…` : name),
        svg('text', { x: W, y: y + 12, 'text-anchor': 'end' }, `${value} · ${percent(share)}`),
        svg('rect', { class: 'track', x: 0, y: y + 18, width: W, height: 8, rx: 4 }),
        svg('rect', { class: 'fill', x: 0, y: y + 18, width: Math.max(share > 0 ? 2 : 0, W * share), height: 8, rx: 4 }, svgTitle(`${name}: ${percent(share)}`)),
      );
    });
    const label = what === 'model' ? 'Model' : 'Provider';
    const table = el('table', { class: 'breakdown', 'data-breakdown': what },
      el('caption', { class: 'visually-hidden', text: `Requests, tokens and spend by ${what}` }),
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col', text: label }),
        el('th', { scope: 'col', class: 'num', text: 'Requests' }),
        el('th', { scope: 'col', class: 'num', text: 'Tokens' }),
        el('th', { scope: 'col', class: 'num', text: 'Spend' }),
        el('th', { scope: 'col', class: 'num share', text: 'Share' }))),
      el('tbody', {}, ...rows.map(([name, b]) => el('tr', { 'data-name': name },
        el('th', { scope: 'row', class: 'model', text: name, title: name }),
        el('td', { class: 'num', text: fmtInt(b.requests) }),
        el('td', { class: 'num', text: fmtInt(b.tokens) }),
        el('td', { class: 'num', text: formatUsd(b.cost), title: exactUsd(b.cost), 'data-exact': b.cost }),
        el('td', { class: 'num share', text: percent(weight(b) / total) })))));
    target.replaceChildren(el('div', { class: 'breakdown-bars' }, chart),
      el('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': `By ${what}` }, table));
  }

  function compareDecimal(a, b) {
    const x = parseDecimal(a), y = parseDecimal(b);
    if (!x || !y) return (x ? 1 : 0) - (y ? 1 : 0);
    const scale = Math.max(x.scale, y.scale);
    const xv = x.v * 10n ** BigInt(scale - x.scale), yv = y.v * 10n ** BigInt(scale - y.scale);
    return xv > yv ? 1 : xv < yv ? -1 : 0;
  }

  const percent = (share) => (share >= 0.995 ? '100%' : share < 0.001 && share > 0 ? '<0.1%' : `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`);

  /** Keeps the current choice even when the new range has no such model. */
  function fillOptions(select, names, allLabel) {
    const current = select.value;
    const list = names.filter((n) => n !== 'unknown');
    if (current && !list.includes(current)) list.push(current);
    list.sort((a, b) => a.localeCompare(b));
    select.replaceChildren(el('option', { value: '', text: allLabel }), ...list.map((n) => el('option', { value: n, text: n })));
    select.value = current;
  }

  // ---- The log -----------------------------------------------------------------------------

  function row(r) {
    const tokens = r.input_tokens === null && r.output_tokens === null
      ? '–'
      : `${fmtInt(r.input_tokens)} / ${fmtInt(r.output_tokens)}`;
    const detail = [
      r.cache_read_tokens ? `${fmtInt(r.cache_read_tokens)} cached` : '',
      r.reasoning_tokens ? `${fmtInt(r.reasoning_tokens)} reasoning` : '',
      r.usage_source === 'estimated' ? 'estimated' : '',
    ].filter(Boolean).join(', ');
    const when = new Date(r.timestamp);
    const outcome = r.status_code ? `${r.outcome} · ${r.status_code}` : r.outcome;
    return el('tr', { 'data-id': r.id },
      el('td', { 'data-label': 'Time', title: r.timestamp },
        timeFormat.format(when),
        r.stream ? el('span', { class: 'tag', text: 'stream' }) : '',
        r.kind === 'event' ? el('span', { class: 'tag', text: 'event' }) : ''),
      el('td', { 'data-label': 'Model', class: 'model', title: r.endpoint, text: r.model ?? '—' }),
      el('td', { 'data-label': 'Provider', text: r.provider ?? '—' }),
      el('td', { 'data-label': 'Tokens in / out', class: 'num', title: detail || null, text: detail.includes('estimated') ? `≈ ${tokens}` : tokens }),
      el('td', {
        'data-label': 'Cost', class: 'num cost', 'data-exact': r.cost_usd ?? '',
        title: r.cost_usd === null ? (r.metadata?.pricing === 'unknown_model' ? 'No price for this model' : 'No cost: no usage') : exactUsd(r.cost_usd),
        text: r.cost_usd === null ? '–' : formatUsd(r.cost_usd),
      }),
      el('td', { 'data-label': 'TTFT', class: 'num', text: fmtMs(r.ttft_ms) }),
      el('td', { 'data-label': 'Latency', class: 'num', text: fmtMs(r.latency_ms) }),
      el('td', { 'data-label': 'Outcome', class: `outcome ${r.outcome}`, title: r.error?.message ?? r.finish_reason ?? null, text: outcome }));
  }

  function renderLog() {
    const p = state.logPage;
    state.shown = new Set(p.logs.map((r) => r.id));
    $('log-rows').replaceChildren(...p.logs.map(row));
    renderLogMeta();
  }

  function renderLogMeta() {
    const p = state.logPage;
    const filtered = state.log.model || state.log.provider || state.log.from || state.log.to;
    const pages = Math.max(1, Math.ceil(p.total / p.limit));
    $('log-count').textContent = `${fmtInt(p.total)} ${p.total === 1 ? 'entry' : 'entries'}${filtered ? ' matching the filters' : ''}`;
    $('log-empty').hidden = p.logs.length > 0;
    $('log-empty').textContent = filtered ? 'Nothing matches these filters.' : 'No activity yet: requests made with your key will appear here as they happen.';
    $('page-label').textContent = `Page ${fmtInt(state.log.page)} of ${fmtInt(pages)}`;
    $('page-prev').disabled = state.log.page <= 1;
    $('page-next').disabled = !p.has_more;
  }

  function matchesLog(r) {
    const f = state.log;
    if (f.model && r.model !== f.model) return false;
    if (f.provider && r.provider !== f.provider) return false;
    const t = Date.parse(r.timestamp);
    if (f.from && t < Date.parse(localDayStart(f.from))) return false;
    if (f.to && t >= Date.parse(localDayStart(f.to, 1))) return false;
    return true;
  }

  function readLogFilters() {
    const from = $('log-from').value, to = $('log-to').value;
    if (from && to && from > to) {
      $('log-to').setCustomValidity('“To” is before “From”.');
      $('log-to').reportValidity();
      return false;
    }
    $('log-to').setCustomValidity('');
    state.log = {
      page: 1,
      limit: Number($('log-limit').value),
      from,
      to,
      model: $('log-model').value,
      provider: $('log-provider').value,
    };
    return true;
  }

  // ---- The live feed ---------------------------------------------------------------------
  //
  // EventSource cannot send an Authorization header, so the stream is read with fetch() and
  // the same Bearer header as every other call; the key never appears in a URL.

  function setLive(mode, text) {
    $('live').dataset.state = mode;
    $('live').textContent = text;
  }

  function stopStream() {
    clearTimeout(state.retryTimer);
    if (state.stream) state.stream.abort();
    state.stream = null;
    setLive('off', 'Live feed off');
  }

  async function connectStream() {
    stopStream();
    const ctrl = new AbortController();
    state.stream = ctrl;
    setLive('connecting', 'Connecting…');
    try {
      const res = await fetch(STREAM, {
        headers: { Authorization: `Bearer ${state.key}`, Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: ctrl.signal,
      });
      if (res.status === 401 || res.status === 403) {
        authFailed();
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = (buffer + value).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
      throw new Error('the server closed the stream');
    } catch (e) {
      if (ctrl.signal.aborted || state.stream !== ctrl) return;
      const seconds = Math.round(state.retryDelay / 1000);
      setLive('retrying', `Live feed lost, retrying in ${seconds} s`);
      state.retryTimer = setTimeout(connectStream, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 30000);
    }
  }

  function dispatch(block) {
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (event === 'ready') {
      state.retryDelay = 1000;
      setLive('live', 'Live');
      // Records stored before this subscription (while connecting or reconnecting) are read
      // from the API instead.
      refreshSoon(true);
    } else if (event === 'activity') {
      try {
        live(JSON.parse(data.join('\n')));
      } catch (e) {
        console.warn('activity stream: bad event', e);
      }
    } else if (event === 'lagged') {
      refreshSoon(true);
    }
  }

  function live(r) {
    refreshSoon(false);
    const p = state.logPage;
    if (!p || state.shown.has(r.id) || !matchesLog(r)) return;
    state.shown.add(r.id);
    p.total += 1;
    if (state.log.page === 1) {
      const tr = row(r);
      tr.classList.add('fresh');
      $('log-rows').prepend(tr);
      p.logs.unshift(r);
      while (p.logs.length > p.limit) {
        const gone = p.logs.pop();
        state.shown.delete(gone.id);
        $('log-rows').lastElementChild?.remove();
        p.has_more = true;
      }
    }
    renderLogMeta();
  }

  // ---- Wiring ------------------------------------------------------------------------------

  function init() {
    $('sign-in-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => signOut());
    $('banner-retry').addEventListener('click', loadAll);

    $('range').addEventListener('change', () => {
      const custom = $('range').value === 'custom';
      for (const node of document.querySelectorAll('.custom-range')) node.hidden = !custom;
      if (custom) {
        const s = state.stats;
        $('range-from').value ||= s?.from ?? '';
        $('range-to').value ||= s?.to ?? todayUtc();
        $('range-from').focus();
      } else {
        loadStats().catch(handle);
      }
    });
    $('range-to').max = todayUtc();
    $('range-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const from = $('range-from'), to = $('range-to');
      from.setCustomValidity(from.value ? '' : 'Choose the first day.');
      to.setCustomValidity(!to.value ? 'Choose the last day.' : from.value > to.value ? '“To” is before “From”.' : '');
      if (!from.reportValidity() || !to.reportValidity()) return;
      hideBanner();
      loadStats().catch(handle);
    });
    for (const input of document.querySelectorAll('input[name="metric"]')) {
      input.addEventListener('change', () => {
        state.metric = input.value;
        if (state.stats) renderDaily();
      });
    }

    $('log-filters').addEventListener('submit', (event) => {
      event.preventDefault();
      if (readLogFilters()) loadLog().catch(handle);
    });
    $('log-filters').addEventListener('reset', () => {
      setTimeout(() => {
        readLogFilters();
        loadLog().catch(handle);
      });
    });
    // Selects apply at once; dates wait for "Filter" (typing a date fires change per field).
    for (const id of ['log-model', 'log-provider', 'log-limit']) {
      $(id).addEventListener('change', () => {
        if (readLogFilters()) loadLog().catch(handle);
      });
    }
    $('page-prev').addEventListener('click', () => {
      state.log.page = Math.max(1, state.log.page - 1);
      loadLog().catch(handle);
    });
    $('page-next').addEventListener('click', () => {
      state.log.page += 1;
      loadLog().catch(handle);
    });

    // Charts are drawn at their pixel width: redraw when it changes (rotation, resizing).
    let drawnWidth = 0;
    new ResizeObserver(() => {
      const width = widthOf($('daily-chart'), 0);
      if (!state.stats || width === drawnWidth || width === 0) return;
      drawnWidth = width;
      renderStats();
    }).observe($('daily-chart'));

    state.key = localStorage.getItem(KEY_STORAGE);
    if (state.key) openDashboard();
    else showSignIn();
  }

  init();
})();
