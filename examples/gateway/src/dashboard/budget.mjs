// Credits and limits: the balance, each limit's use as a bar (`GET /user/credits`), and the
// budget's events from the live feed (thresholds crossed, refusals, top-ups).

import { $, el } from './dom.mjs';
import { fmtInt, formatUsd, parseDecimal, timeFormat } from './format.mjs';

const LIMITS = [
  ['daily_spend', 'Spend today', 'usd'],
  ['monthly_spend', 'Spend this month', 'usd'],
  ['requests_per_minute', 'Requests this minute', 'count'],
  ['tokens_per_day', 'Tokens today', 'count'],
];

/** `used / limit` in per mille, exactly (BigInt), capped at 1000; null without a limit. */
export function perMille(used, limit) {
  const u = parseDecimal(used), l = parseDecimal(limit);
  if (!u || !l) return null;
  const scale = Math.max(u.scale, l.scale);
  const uv = u.v * 10n ** BigInt(scale - u.scale), lv = l.v * 10n ** BigInt(scale - l.scale);
  if (lv <= 0n) return 1000;
  const pm = (uv * 1000n) / lv;
  return Number(pm > 1000n ? 1000n : pm < 0n ? 0n : pm);
}

const show = (kind, text) => (kind === 'usd' ? formatUsd(text) : fmtInt(Number(text)));

/** Renders `GET /user/credits`. */
export function renderCredits(c) {
  const balance = $('credit-balance');
  balance.textContent = c.balance === null ? 'No credit limit' : formatUsd(c.balance);
  balance.dataset.exact = c.balance ?? '';
  $('credit-reserved').textContent = formatUsd(c.reserved);
  const rows = LIMITS.map(([name, label, kind]) => {
    const limit = c.limits?.[name] ?? null;
    const used = c.usage?.[name] ?? '0';
    if (limit === null) {
      return el('div', { class: 'limit', 'data-limit': name },
        el('span', { class: 'limit-label', text: label }),
        el('span', { class: 'muted', text: `${show(kind, used)} · no limit` }));
    }
    const pm = perMille(used, limit) ?? 0;
    const level = pm >= 1000 ? 'full' : pm >= 800 ? 'warn' : 'ok';
    // Through the CSSOM: the page's CSP forbids style attributes.
    const fill = el('div', { class: 'meter-fill' });
    fill.style.width = `${pm / 10}%`;
    return el('div', { class: 'limit', 'data-limit': name },
      el('span', { class: 'limit-label', text: label }),
      el('span', { class: 'limit-figures', text: `${show(kind, used)} of ${show(kind, limit)}` }),
      el('div', {
        class: `meter ${level}`, role: 'meter', 'aria-label': label,
        'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(pm / 10),
      }, fill));
  });
  $('limits').replaceChildren(...rows);
}

/** Whether a live record is one of the budget's events. */
export const isBudgetEvent = (r) =>
  r.kind === 'event' && (String(r.endpoint).startsWith('budget.') || r.endpoint === 'credits.topup');

/** A sentence for a budget event. */
export function describe(r) {
  const m = r.metadata ?? {};
  const usd = (t) => (m.metric === 'spend' ? formatUsd(t) : fmtInt(Number(t)));
  switch (r.endpoint) {
    case 'budget.threshold':
      return `${Math.round(Number(m.threshold) * 100)} % of the ${m.window} ${m.metric} limit reached (${usd(m.spent)} of ${usd(m.limit)})`;
    case 'budget.refused':
      return m.window === 'total'
        ? `Refused: not enough credits (${m.request_model ?? 'request'})`
        : `Refused: the ${m.window} ${m.metric} limit of ${usd(m.limit)} is reached`;
    case 'credits.topup':
      return `Credits added: ${formatUsd(m.amount)} (balance ${formatUsd(m.balance)})`;
    default:
      return r.endpoint;
  }
}

/** Adds a budget event at the top of the alerts (at most 20 kept). */
export function addAlert(r) {
  const list = $('budget-events');
  const when = new Date(r.timestamp);
  list.prepend(el('li', { class: `alert ${r.endpoint.replace('.', '-')}` },
    el('time', { datetime: r.timestamp, text: Number.isNaN(when.getTime()) ? '' : timeFormat.format(when) }),
    ' ', describe(r)));
  while (list.children.length > 20) list.lastElementChild.remove();
  $('budget-events-empty').hidden = true;
}
