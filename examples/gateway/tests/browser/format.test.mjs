// The dashboard's money and number formatting (src/dashboard/format.mjs), in
// Node: no browser needed. Money is formatted from the exact decimal string, never a float.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareDecimal, exactUsd, fmtInt, fmtMs, formatUsd, parseDecimal, percent,
} from '../../src/dashboard/format.mjs';

test('micro-costs keep four significant digits and are never shown as zero', () => {
  for (const [exact, shown] of [
    ['0.0000325', '$0.0000325'],
    ['0.00012625', '$0.0001263'],
    ['0.000000000000000001', '$0.000000000000000001'],
    ['0.00225', '$0.00225'],
    ['0.123456', '$0.1235'],
    ['0.5', '$0.50'],
    ['0', '$0.00'],
  ]) assert.equal(formatUsd(exact), shown, exact);
});

test('a dollar and more has cents, grouped thousands, rounding carried by digits', () => {
  for (const [exact, shown] of [
    ['1', '$1.00'],
    ['12.345', '$12.35'],
    ['1234567.891', '$1,234,567.89'],
    ['0.999996', '$1.00'],
    ['0.0099996', '$0.01'],
    ['9999999999999999.995', '$10,000,000,000,000,000.00'], // past a float's 15–17 digits
    ['-0.5', '−$0.50'],
  ]) assert.equal(formatUsd(exact), shown, exact);
});

test('anything that is not a decimal string is a dash, and the exact value is kept', () => {
  for (const value of [null, undefined, '', 'abc', '1e-5', '0.1.2']) assert.equal(formatUsd(value), '–', String(value));
  assert.equal(exactUsd('0.0000325'), '$0.0000325 exactly');
  assert.equal(exactUsd(null), '');
  assert.deepEqual(parseDecimal('12.50'), { v: 1250n, scale: 2 });
});

test('decimal strings compare exactly, numbers and durations read well', () => {
  assert.equal(compareDecimal('0.10000000000000000001', '0.1'), 1);
  assert.equal(compareDecimal('0.0000325', '0.00003250'), 0);
  assert.equal(compareDecimal('2', '10'), -1);
  assert.equal(fmtInt(1234567), '1,234,567');
  assert.equal(fmtInt(null), '–');
  assert.equal(fmtMs(830.4), '830 ms');
  assert.equal(fmtMs(1250), '1.25 s');
  assert.equal(percent(0.0005), '<0.1%');
  assert.equal(percent(0.456), '46%');
});
