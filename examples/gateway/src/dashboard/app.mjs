// The activity dashboard: sign in, load, render, filter, page, and follow the live feed.
// Plain JavaScript modules, no build step, no dependencies (see `mod.rs` beside this file).

import { addAlert, isBudgetEvent, renderCredits } from './budget.mjs';
import { renderBreakdown, renderDaily, widthOf } from './charts.mjs';
import { $, el } from './dom.mjs';
import { openFeed } from './feed.mjs';
import { costParts, summary, usageCounts } from './detail.mjs';
import {
  exactUsd, fmtInt, fmtMs, formatUsd, localDayStart, longDayFormat, timeFormat, todayUtc, utcDay,
} from './format.mjs';

const KEY_STORAGE = 'tower-activity.api-key';
const STATS = '/user/activity/stats';
const LOG = '/user/activity/log';
const STREAM = '/user/activity/stream';
const CREDITS = '/user/credits';

const state = {
  key: null,
  stats: null,
  metric: 'spend',
  log: { page: 1, limit: 50, from: '', to: '', model: '', provider: '' },
  logPage: null,
  shown: new Set(), // ids of the rows on screen: a live record already there is skipped
  detail: null, // the id of the record whose detail is open
  statsSeq: 0,
  logSeq: 0,
  feed: null,
  refreshTimer: 0,
  refreshLog: false,
};

// ---- API -----------------------------------------------------------------------------------

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

/** The message of an error answer: the gateway's `{"error": {"message"}}`, or its text. */
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

// ---- Sign in and out -----------------------------------------------------------------------

function showSignIn(message = '') {
  stopFeed();
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
  closeDetail();
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
    showSignIn(e instanceof AuthError ? 'That API key was not accepted. Check it and try again.' : e.message);
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
  loadAll();
  startFeed();
}

const authFailed = () => signOut('Your API key is no longer accepted. Sign in again.');

function handle(error) {
  if (error instanceof AuthError) authFailed();
  else showBanner(error.message);
}

function showBanner(text) {
  $('banner-text').textContent = text;
  $('banner').hidden = false;
}

const hideBanner = () => { $('banner').hidden = true; };

// ---- Loading -------------------------------------------------------------------------------

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
    await Promise.all([loadStats(), loadLog(), loadCredits()]);
  } catch (e) {
    handle(e);
  }
}

/** Reads the balance and limits (a gateway without spend control has none: hidden). */
async function loadCredits() {
  try {
    renderCredits(await api(CREDITS));
    $('credits').hidden = false;
  } catch (e) {
    if (e instanceof AuthError) throw e;
    $('credits').hidden = true;
  }
}

/** Re-reads the stats (and the log when `withLog`) soon: once for a burst of live records. */
function refreshSoon(withLog = false) {
  state.refreshLog ||= withLog;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    const log = state.refreshLog;
    state.refreshLog = false;
    if (!state.key) return;
    if (log) loadAll();
    else Promise.all([loadStats(), loadCredits()]).catch(handle);
  }, 250);
}

// ---- Totals and charts ---------------------------------------------------------------------

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
  renderCharts();
  fillOptions($('log-model'), Object.keys(s.by_model), 'All models');
  fillOptions($('log-provider'), Object.keys(s.by_provider), 'All providers');
}

function renderCharts() {
  $('daily-metric-name').textContent = state.metric;
  renderDaily($('daily-chart'), state.stats, state.metric);
  renderBreakdown($('by-model'), state.stats.by_model, 'model');
  renderBreakdown($('by-provider'), state.stats.by_provider, 'provider');
}

/** The filter's choices; keeps the current one even when the new range has no such model. */
function fillOptions(select, names, allLabel) {
  const current = select.value;
  const list = names.filter((n) => n !== 'unknown');
  if (current && !list.includes(current)) list.push(current);
  list.sort((a, b) => a.localeCompare(b));
  select.replaceChildren(el('option', { value: '', text: allLabel }), ...list.map((n) => el('option', { value: n, text: n })));
  select.value = current;
}

// ---- The log -------------------------------------------------------------------------------

function costTitle(r) {
  if (r.cost_usd !== null) return exactUsd(r.cost_usd);
  return r.metadata?.pricing === 'unknown_model' ? 'No price for this model' : 'No cost: no usage';
}

function row(r) {
  const known = r.input_tokens !== null || r.output_tokens !== null;
  const tokens = known ? `${fmtInt(r.input_tokens)} / ${fmtInt(r.output_tokens)}` : '–';
  const estimated = r.usage_source === 'estimated';
  const detail = [
    r.cache_read_tokens ? `${fmtInt(r.cache_read_tokens)} cached` : '',
    r.reasoning_tokens ? `${fmtInt(r.reasoning_tokens)} reasoning` : '',
    estimated ? 'estimated' : '',
  ].filter(Boolean).join(', ');
  return el('tr', {
    'data-id': r.id, tabindex: 0, 'aria-controls': 'row-detail', class: r.id === state.detail ? 'selected' : null,
  },
    el('td', { 'data-label': 'Time', title: r.timestamp },
      timeFormat.format(new Date(r.timestamp)),
      r.stream ? el('span', { class: 'tag', text: 'stream' }) : '',
      r.kind === 'event' ? el('span', { class: 'tag', text: 'event' }) : ''),
    el('td', { 'data-label': 'Model', class: 'model', title: r.endpoint, text: r.model ?? '—' }),
    el('td', { 'data-label': 'Provider', text: r.provider ?? '—' }),
    el('td', { 'data-label': 'Tokens in / out', class: 'num', title: detail || null, text: estimated ? `≈ ${tokens}` : tokens }),
    el('td', { 'data-label': 'Cost', class: 'num cost', 'data-exact': r.cost_usd ?? '', title: costTitle(r), text: formatUsd(r.cost_usd) }),
    el('td', { 'data-label': 'TTFT', class: 'num', text: fmtMs(r.ttft_ms) }),
    el('td', { 'data-label': 'Latency', class: 'num', text: fmtMs(r.latency_ms) }),
    el('td', {
      'data-label': 'Outcome', class: `outcome ${r.outcome}`, title: r.error?.message ?? r.finish_reason ?? null,
      text: r.status_code ? `${r.outcome} · ${r.status_code}` : r.outcome,
    }));
}

function renderLog() {
  const p = state.logPage;
  state.shown = new Set(p.logs.map((r) => r.id));
  $('log-rows').replaceChildren(...p.logs.map(row));
  if (state.detail && !state.shown.has(state.detail)) closeDetail();
  renderLogMeta();
}

// ---- A row's detail --------------------------------------------------------------------------

/** Table rows of `[label, value]` pairs; one muted row saying `none` when there are none. */
function pairRows(pairs, none) {
  if (!pairs.length) return [el('tr', {}, el('td', { class: 'muted', colspan: 2, text: none }))];
  return pairs.map(([k, v]) => el('tr', {}, el('th', { scope: 'row', text: k }), el('td', { text: v })));
}

/** Opens the detail of the record `id` on screen: tier, cost source, parts, counts. */
function openDetail(id) {
  const r = state.logPage?.logs.find((x) => x.id === id);
  if (!r) return;
  state.detail = id;
  for (const tr of $('log-rows').children) tr.classList.toggle('selected', tr.dataset.id === id);
  $('row-detail-title').textContent = `Request detail · ${r.model ?? r.kind} · ${timeFormat.format(new Date(r.timestamp))}`;
  $('row-detail-summary').replaceChildren(
    ...summary(r).flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v ?? '–' })]),
  );
  const noParts = r.cost_usd === null ? 'No cost' : 'No parts recorded';
  $('row-detail-parts').tBodies[0].replaceChildren(...pairRows(costParts(r), noParts));
  $('row-detail-usage').tBodies[0].replaceChildren(...pairRows(usageCounts(r), 'None beyond the tokens'));
  $('row-detail').hidden = false;
}

function closeDetail() {
  state.detail = null;
  $('row-detail').hidden = true;
  for (const tr of $('log-rows').children) tr.classList.remove('selected');
}

function renderLogMeta() {
  const p = state.logPage;
  const f = state.log;
  const filtered = f.model || f.provider || f.from || f.to;
  const pages = Math.max(1, Math.ceil(p.total / p.limit));
  $('log-count').textContent = `${fmtInt(p.total)} ${p.total === 1 ? 'entry' : 'entries'}${filtered ? ' matching the filters' : ''}`;
  $('log-empty').hidden = p.logs.length > 0;
  $('log-empty').textContent = filtered
    ? 'Nothing matches these filters.'
    : 'No activity yet: requests made with your key will appear here as they happen.';
  $('page-label').textContent = `Page ${fmtInt(f.page)} of ${fmtInt(pages)}`;
  $('page-prev').disabled = f.page <= 1;
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
  $('log-to').setCustomValidity(from && to && from > to ? '“To” is before “From”.' : '');
  if (!$('log-to').reportValidity()) return false;
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

// ---- The live feed ---------------------------------------------------------------------------

function setLive(mode, text) {
  $('live').dataset.state = mode;
  $('live').textContent = text;
}

function stopFeed() {
  state.feed?.close();
  state.feed = null;
  setLive('off', 'Live feed off');
}

function startFeed() {
  state.feed?.close();
  state.feed = openFeed({
    url: STREAM,
    key: state.key,
    onState: setLive,
    onAuthFailed: authFailed,
    onEvent(event, data) {
      // On (re)connection and after a lag, records may have been stored that this page has
      // not seen: read them from the API (the log de-duplicates by id).
      if (event === 'ready' || event === 'lagged') refreshSoon(true);
      else if (event === 'activity') {
        try {
          live(JSON.parse(data));
        } catch (e) {
          console.warn('activity stream: bad event', e);
        }
      }
    },
  });
}

/** A record just stored: at the top of the log now, in the totals after a re-read. */
function live(r) {
  refreshSoon(false);
  if (isBudgetEvent(r)) addAlert(r);
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
      state.shown.delete(p.logs.pop().id);
      $('log-rows').lastElementChild?.remove();
      p.has_more = true;
    }
  }
  renderLogMeta();
}

// ---- Wiring --------------------------------------------------------------------------------

function loadLogNow() {
  loadLog().catch(handle);
}

function init() {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => signOut());
  $('banner-retry').addEventListener('click', loadAll);

  $('range').addEventListener('change', () => {
    const custom = $('range').value === 'custom';
    for (const node of document.querySelectorAll('.custom-range')) node.hidden = !custom;
    if (custom) {
      $('range-from').value ||= state.stats?.from ?? '';
      $('range-to').value ||= state.stats?.to ?? todayUtc();
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
      if (state.stats) renderCharts();
    });
  }

  $('log-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    if (readLogFilters()) loadLogNow();
  });
  $('log-filters').addEventListener('reset', () => {
    // The form's fields are reset after this event.
    setTimeout(() => {
      readLogFilters();
      loadLogNow();
    });
  });
  // Selects apply at once; dates wait for "Filter" (typing a date changes it digit by digit).
  for (const id of ['log-model', 'log-provider', 'log-limit']) {
    $(id).addEventListener('change', () => {
      if (readLogFilters()) loadLogNow();
    });
  }
  $('log-rows').addEventListener('click', (event) => {
    const tr = event.target.closest('tr[data-id]');
    if (tr) openDetail(tr.dataset.id);
  });
  $('log-rows').addEventListener('keydown', (event) => {
    const tr = event.target.closest('tr[data-id]');
    if (tr && (event.key === 'Enter' || event.key === ' ')) {
      event.preventDefault();
      openDetail(tr.dataset.id);
    }
  });
  $('row-detail-close').addEventListener('click', closeDetail);
  $('page-prev').addEventListener('click', () => {
    state.log.page = Math.max(1, state.log.page - 1);
    loadLogNow();
  });
  $('page-next').addEventListener('click', () => {
    state.log.page += 1;
    loadLogNow();
  });

  // Charts are drawn at their pixel width: redraw when it changes (rotation, resizing).
  let drawnWidth = 0;
  new ResizeObserver(() => {
    const width = widthOf($('daily-chart'), 0);
    if (!state.stats || width === drawnWidth || width === 0) return;
    drawnWidth = width;
    renderCharts();
  }).observe($('daily-chart'));

  state.key = localStorage.getItem(KEY_STORAGE);
  if (state.key) openDashboard();
  else showSignIn();
}

init();
