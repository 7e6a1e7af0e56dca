// The log's row detail (src/dashboard/detail.mjs), in Node: the tier, the cost's source and
// table, its parts exactly as sent, and the extra counts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costParts, costSource, priceTable, summary, usageCounts } from '../../src/dashboard/detail.mjs';

const anthropic = {
  id: '0190-…',
  endpoint: '/v1/messages',
  service_tier: 'standard',
  cost_usd: '0.012684',
  cost_source: 'computed',
  cost_details: {
    output: '0.0015', cache_write_1h: '0.009', input: '0.000009', cache_read: '0.0003',
    cache_write_5m: '0.001875', mystery_fee: '0',
  },
  usage_details: { cache_write_1h_tokens: 1500, cache_write_5m_tokens: 500, web_fetch_requests: 0 },
  cache_read_tokens: 1000,
  cache_write_tokens: 2000,
  reasoning_tokens: null,
  usage_source: 'reported',
  metadata: { price_table: { source: 'embedded: LiteLLM 1.110.2, 1.74.0', date: '2026-12-01' } },
};

test('the parts come in reading order, exactly, unknown ones by name at the end', () => {
  assert.deepEqual(costParts(anthropic), [
    ['Input', '$0.000009 exactly'],
    ['Cache read', '$0.0003 exactly'],
    ['Cache write, 5 min', '$0.001875 exactly'],
    ['Cache write, 1 h', '$0.009 exactly'],
    ['Output', '$0.0015 exactly'],
    ['Mystery fee', '$0 exactly'],
  ]);
  assert.deepEqual(costParts({ cost_details: null }), []);
});

test('counts leave out zeros', () => {
  assert.deepEqual(usageCounts(anthropic), [
    ['Cache write 1h tokens', '1,500'],
    ['Cache write 5m tokens', '500'],
  ]);
  assert.deepEqual(usageCounts({}), []);
});

test('the source of the cost and its table are said', () => {
  assert.equal(costSource(anthropic), 'Computed from the price table');
  assert.equal(costSource({ cost_source: 'reported' }), 'Reported by the provider');
  assert.equal(costSource({ cost_source: null, metadata: { pricing: 'unknown_model' } }), 'No price for this model');
  assert.equal(priceTable(anthropic), 'embedded: LiteLLM 1.110.2, 1.74.0, 2026-12-01');
  assert.equal(priceTable({ metadata: {} }), null);
  const lines = Object.fromEntries(summary(anthropic));
  assert.equal(lines['Service tier'], 'standard');
  assert.equal(lines.Cost, '$0.012684 exactly');
  assert.equal(lines['Price table'], 'embedded: LiteLLM 1.110.2, 1.74.0, 2026-12-01');
  assert.equal(Object.fromEntries(summary({ ...anthropic, service_tier: null }))['Service tier'], 'Not stated');
});
