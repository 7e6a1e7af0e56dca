// Numbers, money and dates for reading.
//
// Money arrives as exact decimal strings ("0.0000325"). It is formatted digit by digit with
// BigInt and never goes through a float, so no digit is invented or lost; the page never adds
// money up (totals come from the server). Pure functions: `tests/browser/format.test.mjs`
// runs them in Node.

/** `"12.5"` → `{ v: 125n, scale: 1 }`; null for anything that is not a plain decimal. */
export function parseDecimal(text) {
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
 * decimals), so $0.0000325 stays $0.0000325 and is never shown as $0.00. `–` for anything
 * that is not a decimal (a `null` cost).
 */
export function formatUsd(text) {
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
export const exactUsd = (text) => (parseDecimal(text) ? `$${text} exactly` : '');

/** Orders two decimal strings exactly (for sorting by cost); non-decimals first. */
export function compareDecimal(a, b) {
  const x = parseDecimal(a), y = parseDecimal(b);
  if (!x || !y) return (x ? 1 : 0) - (y ? 1 : 0);
  const scale = Math.max(x.scale, y.scale);
  const xv = x.v * 10n ** BigInt(scale - x.scale), yv = y.v * 10n ** BigInt(scale - y.scale);
  return xv > yv ? 1 : xv < yv ? -1 : 0;
}

const intFormat = new Intl.NumberFormat('en-US');
export const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

/** `12,345`; `–` when unknown. */
export const fmtInt = (n) => (n === null || n === undefined ? '–' : intFormat.format(n));

/** `830 ms`, `1.25 s`; `–` when unknown. */
export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/** A share (0–1) as a percentage with sensible precision. */
export function percent(share) {
  if (share >= 0.995) return '100%';
  if (share > 0 && share < 0.001) return '<0.1%';
  return `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
}

/** An axis value without exponent notation (`0.0000002`, not `2e-7`). */
function axisNumber(v, decimals) {
  return Number(v.toFixed(decimals)).toLocaleString('en-US', { maximumFractionDigits: decimals });
}

/** A money axis label (the gridline values are floats: geometry, not accounting). */
export const axisUsd = (v, decimals) => (v === 0 ? '$0' : `$${axisNumber(v, decimals)}`);

export const dayFormat = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
export const longDayFormat = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
/** Log times: the browser's own locale and time zone. */
export const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A `YYYY-MM-DD` UTC day as a Date. */
export const utcDay = (ymd) => new Date(`${ymd}T00:00:00Z`);

/** Today's UTC day as `YYYY-MM-DD`. */
export const todayUtc = () => new Date().toISOString().slice(0, 10);

/** A local calendar day (`YYYY-MM-DD`) as the RFC 3339 instant it starts, `plusDays` later. */
export function localDayStart(ymd, plusDays = 0) {
  const [y, m, d] = ymd.split('-').map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
}
