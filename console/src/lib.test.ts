import { describe, expect, it } from 'vitest';
import { durationSeconds, isoUtc, localInputToMs, participationParts, reportSeries, stepSeries, venBadges } from './lib';
import { qs } from './api';

describe('durationSeconds', () => {
  it('reads the forms OpenADR uses', () => {
    expect(durationSeconds('PT1H')).toBe(3600);
    expect(durationSeconds('PT30M')).toBe(1800);
    expect(durationSeconds('P1DT1H1M1S')).toBe(90061);
    expect(durationSeconds('P1W')).toBe(604800);
    expect(durationSeconds('PT0.5S')).toBe(0.5);
  });
  it('refuses what is not a duration', () => {
    for (const d of ['', 'P', 'PT', '1H', 'PT1X', 'P1Y2', 'hello']) expect(durationSeconds(d)).toBeNaN();
  });
});

describe('stepSeries', () => {
  it('puts a point at each interval start and one at the end', () => {
    const t0 = Date.parse('2026-12-03T14:00:00Z');
    const s = stepSeries(t0, [
      { duration: 'PT30M', value: 1 },
      { duration: 'PT15M', value: 3 },
    ])!;
    expect(s.xs).toEqual([t0 / 1000, t0 / 1000 + 1800, t0 / 1000 + 2700]);
    expect(s.ys).toEqual([1, 3, 3]);
  });
  it('gives null for an interval without a valid duration', () => {
    expect(stepSeries(0, [{ duration: 'PT0S', value: 1 }])).toBeNull();
    expect(stepSeries(0, [{ duration: 'soon', value: 1 }])).toBeNull();
    expect(stepSeries(0, [])).toBeNull();
  });
});

describe('participationParts', () => {
  it('splits the listed VENs in percent', () => {
    const p = participationParts({ received: 4, optIn: 1, optOut: 1, none: 2 });
    expect(p).toEqual({ optIn: 25, optOut: 25, none: 50, total: 4 });
  });
  it('is all zero with nobody listed', () => {
    expect(participationParts({})).toEqual({ optIn: 0, optOut: 0, none: 0, total: 0 });
  });
});

describe('venBadges', () => {
  it('names the states the fleet filters on', () => {
    expect(venBadges({ provisioned: true, state: 'unregistered' })).toEqual(['provisioned']);
    expect(venBadges({ state: 'registered', online: true })).toEqual(['registered', 'online']);
    expect(venBadges({ state: 'registered', online: false, reportsOverdue: 2, pushUndelivered: { attempts: 5 } })).toEqual([
      'registered',
      'offline',
      'overdue',
      'push undeliverable',
    ]);
  });
});

describe('reportSeries', () => {
  it('keeps numeric values of the rID, sorted by interval start', () => {
    const s = reportSeries(
      [
        { dtstart: '2026-12-03T14:01:00Z', value: '2.5', rID: 'a' },
        { dtstart: '2026-12-03T14:00:00Z', value: '1', rID: 'a' },
        { dtstart: '2026-12-03T14:00:00Z', value: '9', rID: 'b' },
        { dtstart: '2026-12-03T14:02:00Z', rID: 'a' },
        { dtstart: '2026-12-03T14:03:00Z', value: 'x', rID: 'a' },
      ],
      'a',
    );
    expect(s.ys).toEqual([1, 2.5]);
    expect(s.xs[1] - s.xs[0]).toBe(60);
  });
});

describe('times and queries', () => {
  it('writes UTC without milliseconds and reads inputs as UTC', () => {
    expect(isoUtc(Date.parse('2026-12-03T14:00:00.123Z'))).toBe('2026-12-03T14:00:00Z');
    expect(localInputToMs('2026-12-03T14:00')).toBe(Date.parse('2026-12-03T14:00:00Z'));
    expect(localInputToMs('')).toBeNaN();
  });
  it('leaves empty filters out of the query', () => {
    expect(qs({ limit: 50, q: '', state: 'online', cursor: null, status: ['far', 'near'] })).toBe('?limit=50&state=online&status=far&status=near');
    expect(qs({})).toBe('');
  });
});
