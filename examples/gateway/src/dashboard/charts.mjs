// Hand-drawn SVG charts: the daily series and the breakdowns, each with a table beside it.
//
// Charts are drawn at their container's pixel width (the caller redraws on resize), so text
// keeps its real size on a phone. Bar lengths are the one place a money value becomes a
// float: geometry, not accounting; every number printed comes from the exact strings.

import { el, svg, svgTitle } from './dom.mjs';
import {
  axisUsd, compactFormat, compareDecimal, dayFormat, exactUsd, fmtInt, formatUsd,
  longDayFormat, parseDecimal, percent, utcDay,
} from './format.mjs';

const compact = (v) => compactFormat.format(v);

/** What the daily chart can show. */
export const METRICS = {
  spend: { value: (d) => Number(d.spend), label: (d) => formatUsd(d.spend), axis: axisUsd },
  tokens: { value: (d) => d.tokens, label: (d) => `${fmtInt(d.tokens)} tokens`, axis: compact },
  requests: { value: (d) => d.requests, label: (d) => `${fmtInt(d.requests)} requests`, axis: compact },
};

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

/** The pixel width of `node`'s content. */
export const widthOf = (node, fallback) => Math.round(node.clientWidth || fallback);

/** The daily chart of `stats` for `metric` (`spend`, `tokens`, `requests`) into `target`. */
export function renderDaily(target, stats, metric) {
  const m = METRICS[metric];
  const days = stats.daily_stats;
  const values = days.map(m.value);
  const ticks = axis(Math.max(0, ...values));
  const top = ticks.step * ticks.count;
  const W = Math.max(280, widthOf(target, 720));
  const H = W < 560 ? 200 : 240, R = 8, T = 12, B = 26;
  const L = metric === 'spend' ? 16 + 7 * (ticks.decimals + 3) : 44;
  const plotW = W - L - R, plotH = H - T - B;
  const band = plotW / Math.max(1, days.length);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'daily-desc' });
  const busiest = days.reduce((best, d, i) => (values[i] > (best ? m.value(best) : 0) ? d : best), null);
  chart.append(svg('desc', { id: 'daily-desc' }, `Daily ${metric}, ${stats.from} to ${stats.to}. ${busiest
    ? `Highest: ${m.label(busiest)} on ${busiest.date}.`
    : 'No requests in this range.'}`));
  // An empty range gets its baseline only: no made-up scale.
  for (let i = 0; i <= (busiest ? ticks.count : 0); i++) {
    const y = T + plotH - (plotH * i) / ticks.count;
    chart.append(
      svg('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }),
      svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, m.axis(ticks.step * i, ticks.decimals)),
    );
  }
  const every = Math.max(1, Math.ceil(days.length / Math.max(2, Math.floor(plotW / 64)))); // a date per ~64 px
  days.forEach((d, i) => {
    const h = (plotH * values[i]) / top;
    const x = L + i * band;
    const w = Math.max(1, band * 0.72);
    const tip = `${longDayFormat.format(utcDay(d.date))}: ${formatUsd(d.spend)} · ${fmtInt(d.requests)} requests · ${fmtInt(d.tokens)} tokens`;
    // A transparent full-height target, so that a day with a tiny bar still has its tooltip.
    chart.append(svg('rect', { x, y: T, width: band, height: plotH, fill: 'transparent' }, svgTitle(tip)));
    if (h > 0) {
      const bh = Math.max(h, 1.5);
      chart.append(svg('rect', { class: 'bar', x: x + (band - w) / 2, y: T + plotH - bh, width: w, height: bh, rx: Math.min(3, w / 3) }, svgTitle(tip)));
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
  details.open = Boolean(target.querySelector('details')?.open);
  target.replaceChildren(chart, details);
}

/** Bars (top 8) and a table (all) of `map` (`by_model` or `by_provider`) into `target`. */
export function renderBreakdown(target, map, what) {
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
  const maxChars = Math.floor(W / 16);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${shown.length * rowH}`, role: 'img', 'aria-label': `Share of ${bySpend ? 'spend' : 'requests'} by ${what}` });
  shown.forEach(([name, b], i) => {
    const y = i * rowH;
    const share = weight(b) / total;
    const value = bySpend ? formatUsd(b.cost) : `${fmtInt(b.requests)} req`;
    chart.append(
      svg('text', { x: 0, y: y + 12 }, name.length > maxChars ? `${name.slice(0, maxChars - 1)}…` : name),
      svg('text', { x: W, y: y + 12, 'text-anchor': 'end' }, `${value} · ${percent(share)}`),
      svg('rect', { class: 'track', x: 0, y: y + 18, width: W, height: 8, rx: 4 }),
      svg('rect', { class: 'fill', x: 0, y: y + 18, width: Math.max(share > 0 ? 2 : 0, W * share), height: 8, rx: 4 }, svgTitle(`${name}: ${percent(share)}`)),
    );
  });
  const table = el('table', { class: 'breakdown', 'data-breakdown': what },
    el('caption', { class: 'visually-hidden', text: `Requests, tokens and spend by ${what}` }),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col', text: what === 'model' ? 'Model' : 'Provider' }),
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
