// The activity dashboard in a real browser: Debian's headless Chromium driven by
// playwright-core, against the example gateway (`cargo run -p gateway` on a free
// port with a fresh database) in front of its in-process mock upstream.
//
//   cd examples/gateway/tests/browser && npm ci && npm test
//
// Environment: CHROMIUM (default /usr/bin/chromium), GATEWAY_DATABASE_URL (the gateway's
// DATABASE_URL; default a fresh SQLite file in a temporary folder, the gateway's default
// store), CARGO_TARGET_DIR (where the gateway is built). Writes target/dashboard.png (laptop
// width) and target/dashboard-phone.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

// The workspace root: cargo builds there, and target/ is there.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PROMPT = 'Count the tokens of this prompt, please.';
const ADMIN_TOKEN = 'browser-test-admin-token-0123456789';

let gateway; // the child process
let base; // http://127.0.0.1:PORT
let tmp;
let browser;
let key;
let gatewayLog = '';

const freePort = () => new Promise((ok, fail) => {
  const server = createServer();
  server.once('error', fail);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => ok(port));
  });
});

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function until(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})\n--- gateway log ---\n${gatewayLog.slice(-4000)}`);
}

async function call(method, path, body, headers = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

const api = async (path) => {
  const res = await call('GET', path);
  assert.equal(res.status, 200, `${path}: ${res.text}`);
  return res.json();
};

/** One LLM request through the gateway, JSON or streamed; the whole answer is read. */
async function llm(kind, model, stream = false) {
  const requests = {
    chat: ['/v1/chat/completions', { model, stream, messages: [{ role: 'user', content: PROMPT }] }],
    anthropic: ['/v1/messages', { model, stream, max_tokens: 64, messages: [{ role: 'user', content: PROMPT }] }],
    gemini: [`/v1beta/models/${model}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`, { contents: [{ parts: [{ text: PROMPT }] }] }],
  };
  const [path, body] = requests[kind];
  const res = await call('POST', path, body);
  assert.equal(res.status, 200, `${kind} ${model}: ${res.text}`);
  if (stream) assert.match(res.headers.get('content-type'), /text\/event-stream/);
}

const dollars = /^\$\d[\d,]*\.\d{2,}$/;
const fmtInt = (n) => new Intl.NumberFormat('en-US').format(n);

before(async () => {
  const build = spawnSync('cargo', ['build', '-p', 'gateway'], { cwd: ROOT, stdio: 'inherit' });
  assert.equal(build.status, 0, 'cargo build -p gateway');
  tmp = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = spawn(join(TARGET, 'debug', 'gateway'), [], {
    cwd: tmp,
    env: {
      ...process.env,
      GATEWAY_ADDR: `127.0.0.1:${port}`,
      // Relative to the gateway's working directory, the temporary folder.
      DATABASE_URL: process.env.GATEWAY_DATABASE_URL || 'sqlite://activity.db',
      ADMIN_TOKEN,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const out of [gateway.stdout, gateway.stderr]) out.on('data', (d) => { gatewayLog += d; });
  const exited = new Promise((ok) => gateway.once('exit', (code) => ok(code)));
  await Promise.race([
    until('the gateway to answer /healthz', async () => (await fetch(`${base}/healthz`)).ok, 60000),
    exited.then((code) => { throw new Error(`the gateway exited (${code}):\n${gatewayLog}`); }),
  ]);

  const registered = await call('POST', '/auth/register', { email: 'dashboard@example.com' });
  assert.equal(registered.status, 201, registered.text);
  key = registered.json().api_key;

  await llm('chat', 'gpt-4o-mini');
  await llm('chat', 'gpt-4o-mini', true);
  await llm('chat', 'gpt-4o', true);
  await llm('anthropic', 'claude-sonnet-4-5', true);
  await llm('gemini', 'gemini-2.5-flash');
  await until('5 requests in the stats', async () => (await api('/user/activity/stats?days=7')).total_requests === 5);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGTERM');
    await Promise.race([new Promise((ok) => gateway.once('exit', ok)), sleep(15000)]);
    if (gateway.exitCode === null) gateway.kill('SIGKILL');
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function signedInPage(viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: 'en-US' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${base}/dashboard/activity`);
  await page.getByLabel('API key', { exact: true }).fill(key);
  await page.getByRole('button', { name: 'Show my activity' }).click();
  await page.locator('#live[data-state="live"]').waitFor();
  await page.locator('#log-rows tr').first().waitFor();
  return { context, page, errors };
}

const rowIds = (page) => page.locator('#log-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));

test('the dashboard shows the totals and the log the API returns, filters by model, and updates live', async () => {
  const { context, page, errors } = await signedInPage();

  // Totals: the same numbers as the stats API, money to the last digit.
  const stats = await api('/user/activity/stats?days=7');
  assert.equal(await page.textContent('#total-requests'), fmtInt(stats.total_requests));
  assert.equal(await page.textContent('#total-tokens'), fmtInt(stats.total_tokens));
  assert.equal(await page.getAttribute('#total-spend', 'data-exact'), stats.total_spend);
  assert.equal(await page.getAttribute('#avg-cost', 'data-exact'), stats.avg_cost_per_request);
  assert.match(await page.textContent('#total-spend'), dollars);
  assert.notEqual(await page.textContent('#total-spend'), '$0.00', 'micro-costs are never shown as zero');
  for (const [model, b] of Object.entries(stats.by_model)) {
    const row = page.locator(`table[data-breakdown="model"] tr[data-name="${model}"]`);
    assert.equal(await row.locator('td').nth(0).textContent(), fmtInt(b.requests), model);
    assert.equal(await row.locator('td[data-exact]').getAttribute('data-exact'), b.cost, model);
  }
  assert.equal(await page.locator('#daily-chart svg rect.bar').count(), stats.daily_stats.filter((d) => Number(d.spend) > 0).length);

  // The log: the API's rows, in its order, with its exact costs.
  const log = await api('/user/activity/log?limit=50&page=1');
  assert.deepEqual(await rowIds(page), log.logs.map((r) => r.id));
  const costs = await page.locator('#log-rows td.cost').evaluateAll((cells) => cells.map((c) => c.dataset.exact));
  assert.deepEqual(costs, log.logs.map((r) => r.cost_usd ?? ''));
  assert.match(await page.textContent('#log-count'), new RegExp(`^${log.total} entries`));

  // The model filter: a keyboard-usable, labelled select; the rows are the API's filtered rows.
  await page.getByLabel('Model', { exact: true }).selectOption('gpt-4o-mini');
  const filtered = await api('/user/activity/log?limit=50&page=1&model=gpt-4o-mini');
  assert.equal(filtered.total, 2);
  await until('the filtered rows', async () => JSON.stringify(await rowIds(page)) === JSON.stringify(filtered.logs.map((r) => r.id)));
  const models = await page.locator('#log-rows td.model').allTextContents();
  assert.deepEqual(models, ['gpt-4o-mini', 'gpt-4o-mini']);
  await page.getByRole('button', { name: 'Clear' }).click();
  await until('the unfiltered rows', async () => (await rowIds(page)).length === log.logs.length);

  // Live: a new request appears at the top and in the totals without a reload.
  await page.evaluate(() => { window.notReloaded = true; });
  await llm('anthropic', 'claude-sonnet-4-5', true);
  await until('the live row', async () => (await rowIds(page)).length === log.logs.length + 1);
  const newest = (await api('/user/activity/log?limit=1')).logs[0];
  assert.equal((await rowIds(page))[0], newest.id);
  assert.equal(await page.getAttribute('#log-rows tr:first-child td.cost', 'data-exact'), newest.cost_usd);
  await until('the live totals', async () => (await page.textContent('#total-requests')) === fmtInt(stats.total_requests + 1));
  const fresh = await api('/user/activity/stats?days=7');
  await until('the exact live spend', async () => (await page.getAttribute('#total-spend', 'data-exact')) === fresh.total_spend);
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'no reload');
  assert.equal(new Set(await rowIds(page)).size, log.logs.length + 1, 'each record once');

  await page.screenshot({ path: join(ROOT, 'target', 'dashboard.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test('a row opens its detail: the tier, where the cost comes from, the cost by part', async () => {
  const { context, page, errors } = await signedInPage();
  const log = await api('/user/activity/log?limit=50&page=1');
  const r = log.logs.find((x) => x.kind === 'request' && x.cost_usd !== null);
  assert.ok(r, 'a priced request in the log');
  await page.locator(`#log-rows tr[data-id="${r.id}"]`).focus();
  await page.keyboard.press('Enter');
  await page.locator('#row-detail').waitFor();
  const summary = await page.locator('#row-detail-summary').evaluate((dl) => Object.fromEntries(
    [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
  assert.equal(summary['Service tier'], r.service_tier ?? 'Not stated');
  assert.equal(summary.Cost, `$${r.cost_usd} exactly`);
  assert.equal(summary['Cost source'], 'Computed from the price table');
  assert.match(summary['Price table'], /^embedded: LiteLLM 1\.110\.2/);
  const parts = await page.locator('#row-detail-parts tbody td:last-child').allTextContents();
  assert.deepEqual(parts.sort(), Object.values(r.cost_details).map((v) => `$${v} exactly`).sort());
  assert.equal(await page.getAttribute(`#log-rows tr[data-id="${r.id}"]`, 'class'), 'selected');
  await page.locator('#row-detail-close').click();
  assert.equal(await page.isHidden('#row-detail'), true);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the balance and each limit as a bar, and a threshold crossed appears in the live alerts', async () => {
  const { context, page, errors } = await signedInPage();
  const me = await api('/user/credits');
  await until('the balance', async () => (await page.getAttribute('#credit-balance', 'data-exact')) === me.balance);
  assert.match(await page.textContent('#credit-balance'), dollars);

  // A token limit that one 34-token request (10 in, 24 out) takes across 80 %: today's use
  // is below 80 % of it, today's use + 34 is not.
  const userId = (await call('POST', '/auth/login', {})).json().user_id;
  const before = Number(me.usage.tokens_per_day);
  const limit = Math.floor((5 * (before + 34)) / 4);
  const set = await call('PUT', `/admin/users/${userId}/limits`,
    { tokens_per_day: limit, daily_spend: '0.50' }, { authorization: `Bearer ${ADMIN_TOKEN}` });
  assert.equal(set.status, 200, set.text);
  const one = await call('POST', '/v1/chat/completions',
    { model: 'gpt-4o-mini', max_tokens: 24, messages: [{ role: 'user', content: PROMPT }] });
  assert.equal(one.status, 200, one.text);
  await until('the threshold alert', async () => /80 % of the day tokens limit/.test(await page.textContent('#budget-events')));
  await until('two limit bars', async () => (await page.locator('#limits [role="meter"]').count()) === 2);
  await until('the settled use', async () => (await api('/user/credits')).usage.tokens_per_day === String(before + 34));
  await until('the token bar', async () =>
    (await page.getAttribute('[data-limit="tokens_per_day"] [role="meter"]', 'aria-valuenow')) === String(Math.round(((before + 34) / limit) * 100)));
  assert.deepEqual(errors, []);
  await context.close();
});

test('at phone width nothing overflows the screen', async () => {
  const { context, page, errors } = await signedInPage({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await page.screenshot({ path: join(ROOT, 'target', 'dashboard-phone.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test('a wrong key gets a clear message; sign out forgets the key', async () => {
  const context = await browser.newContext({ locale: 'en-US' });
  const page = await context.newPage();
  await page.goto(`${base}/dashboard/activity`);
  await page.getByLabel('API key', { exact: true }).fill('sk-gw-not-a-key');
  await page.getByLabel('API key', { exact: true }).press('Enter');
  await until('the error', async () => /not accepted/.test(await page.textContent('#sign-in-error')));
  assert.equal(await page.isVisible('#dashboard'), false);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'a refused key is not kept');

  await page.getByLabel('API key', { exact: true }).fill(key);
  await page.getByLabel('API key', { exact: true }).press('Enter');
  await page.locator('#live[data-state="live"]').waitFor();
  await page.reload();
  await page.locator('#live[data-state="live"]').waitFor(); // remembered across reloads
  await page.getByRole('button', { name: 'Sign out' }).click();
  assert.equal(await page.isVisible('#sign-in'), true);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.textContent('#live'), 'Live feed off');
  await context.close();
});
