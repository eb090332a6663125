// Pure helpers of the console (no DOM): tested in lib.test.ts.

// Seconds of an ISO 8601 duration as OpenADR uses them (PnW, PnDTnHnMnS;
// no years or months). NaN when it is not one.
export function durationSeconds(d: string): number {
  const m = /^([+-])?P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(
    d.trim(),
  );
  if (!m || d.trim() === 'P' || /T$/.test(d.trim())) return NaN;
  const n = (x?: string) => (x ? parseFloat(x) : 0);
  const s = n(m[2]) * 604800 + n(m[3]) * 86400 + n(m[4]) * 3600 + n(m[5]) * 60 + n(m[6]);
  return m[1] === '-' ? -s : s;
}

export interface Interval {
  duration: string;
  value: number;
}

// The points of a step chart of a signal's intervals from dtstart (ms):
// x in seconds since the epoch (uPlot's unit), one point per interval
// start and a last one at the end holding the last value, so the final
// step has its width. null when an interval's duration is not valid.
export function stepSeries(dtstartMs: number, intervals: Interval[]): { xs: number[]; ys: number[] } | null {
  const xs: number[] = [];
  const ys: number[] = [];
  let t = dtstartMs / 1000;
  for (const iv of intervals) {
    const s = durationSeconds(iv.duration);
    if (!(s > 0) || !Number.isFinite(iv.value)) return null;
    xs.push(t);
    ys.push(iv.value);
    t += s;
  }
  if (!xs.length) return null;
  xs.push(t);
  ys.push(ys[ys.length - 1]);
  return { xs, ys };
}

export interface Counts {
  received?: number;
  optIn?: number;
  optOut?: number;
  none?: number;
}

// The participation bar: each part's share of the VENs listed, in percent
// (0 each when nobody is listed).
export function participationParts(c: Counts): { optIn: number; optOut: number; none: number; total: number } {
  const optIn = c.optIn ?? 0,
    optOut = c.optOut ?? 0,
    none = c.none ?? 0;
  const total = optIn + optOut + none;
  const pct = (x: number) => (total ? (100 * x) / total : 0);
  return { optIn: pct(optIn), optOut: pct(optOut), none: pct(none), total };
}

export interface VenLike {
  provisioned?: boolean;
  state?: string;
  online?: boolean;
  reportsOverdue?: number | boolean;
  pushUndelivered?: unknown;
}

// The state badges the fleet shows for a VEN (issue: provisioned,
// registered, online/offline, overdue reports, push undeliverable).
export function venBadges(v: VenLike): string[] {
  const b: string[] = [];
  if (v.state === 'registered') {
    b.push('registered');
    if (v.online !== undefined) b.push(v.online ? 'online' : 'offline');
  } else if (v.state === 'cancelling') b.push('cancelling');
  else b.push(v.provisioned ? 'provisioned' : 'unregistered');
  if (v.reportsOverdue) b.push('overdue');
  if (v.pushUndelivered) b.push('push undeliverable');
  return b;
}

export interface ReportPoint {
  dtstart: string;
  value?: string;
  rID?: string;
}

// Telemetry values of one rID as a line: x (s) by interval start, sorted;
// status payloads and non-numbers are left out.
export function reportSeries(data: ReportPoint[], rID?: string): { xs: number[]; ys: number[] } {
  const pts: [number, number][] = [];
  for (const d of data) {
    if (rID && d.rID !== rID) continue;
    if (d.value === undefined) continue;
    const y = Number(d.value);
    const x = Date.parse(d.dtstart);
    if (!Number.isFinite(y) || !Number.isFinite(x)) continue;
    pts.push([x / 1000, y]);
  }
  pts.sort((a, b) => a[0] - b[0]);
  return { xs: pts.map((p) => p[0]), ys: pts.map((p) => p[1]) };
}

// UTC ISO time without milliseconds, as the API writes and wants them.
export function isoUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// A value of <input type="datetime-local"> read as UTC (the console works
// in UTC like the API), or NaN.
export function localInputToMs(v: string): number {
  if (!v) return NaN;
  return Date.parse(v.length === 16 ? `${v}:00Z` : `${v}Z`);
}
export function msToLocalInput(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16);
}

// "3 s ago" style age of a time; '-' when there is none.
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'in the future';
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

// Offers text as a file download (PEM, CSV) without leaving the page.
export function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
