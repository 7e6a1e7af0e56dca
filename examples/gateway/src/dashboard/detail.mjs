// What the log's row detail shows of one record: the tier, where its cost comes from, the cost
// part by part and the extra counts the provider reported. Pure functions (no DOM), so that
// `tests/browser/detail.test.mjs` runs them in Node; money stays the exact decimal strings.

import { exactUsd, fmtInt } from './format.mjs';

/** Names of the priced parts (`cost_details` keys), in reading order. */
const PART_NAMES = {
  input: 'Input',
  input_audio: 'Input audio',
  input_image: 'Input images',
  input_video: 'Input video',
  tool_use_input: 'Tool-use prompt',
  cache_read: 'Cache read',
  cache_read_audio: 'Cache read, audio',
  cache_read_image: 'Cache read, images',
  cache_write_5m: 'Cache write, 5 min',
  cache_write_1h: 'Cache write, 1 h',
  output: 'Output',
  reasoning: 'Reasoning',
  output_audio: 'Output audio',
  output_image: 'Output images',
  web_search: 'Web search',
  computed: 'Price table’s figure',
};

/** A `snake_case` name the dashboard has no words for, readable anyway. */
const words = (name) => name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

/** What `cost_source` means for a reader. */
export function costSource(r) {
  if (r.cost_source === 'reported') return 'Reported by the provider';
  if (r.cost_source === 'computed') return 'Computed from the price table';
  return r.metadata?.pricing === 'unknown_model' ? 'No price for this model' : 'No cost';
}

/** The price table a computed figure came from: `source, date`; null when none was used. */
export function priceTable(r) {
  const t = r.metadata?.price_table;
  if (!t || typeof t !== 'object') return null;
  return t.date ? `${t.source}, ${t.date}` : String(t.source);
}

/**
 * `cost_details` as `[label, exact]` rows: known parts in reading order, others after them by
 * name; each amount exactly as the server sent it.
 */
export function costParts(r) {
  const d = r.cost_details;
  if (!d || typeof d !== 'object') return [];
  const known = Object.keys(PART_NAMES).filter((k) => k in d);
  const other = Object.keys(d).filter((k) => !(k in PART_NAMES)).sort();
  return [...known, ...other].map((k) => [PART_NAMES[k] ?? words(k), exactUsd(String(d[k]))]);
}

/** `usage_details` as `[label, count]` rows, zero counts left out, sorted by name. */
export function usageCounts(r) {
  const d = r.usage_details;
  if (!d || typeof d !== 'object') return [];
  return Object.keys(d)
    .filter((k) => Number(d[k]) !== 0)
    .sort()
    .map((k) => [words(k), fmtInt(d[k])]);
}

/** The detail's summary lines as `[label, value]`. */
export function summary(r) {
  const rows = [
    ['Service tier', r.service_tier ?? 'Not stated'],
    ['Cost', r.cost_usd === null || r.cost_usd === undefined ? '–' : exactUsd(r.cost_usd)],
    ['Cost source', costSource(r)],
  ];
  const table = priceTable(r);
  if (table) rows.push(['Price table', table]);
  rows.push(
    ['Cache read / write', `${fmtInt(r.cache_read_tokens)} / ${fmtInt(r.cache_write_tokens)}`],
    ['Reasoning tokens', fmtInt(r.reasoning_tokens)],
    ['Usage', r.usage_source],
    ['Endpoint', r.endpoint],
    ['Record', r.id],
  );
  return rows;
}
