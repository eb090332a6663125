// Events: a timeline by program, the create/modify form with its step
// chart, and one event's live participation.
import { useMemo, useState } from 'preact/hooks';
import { api, get, getText } from '../api';
import { Chart } from '../charts';
import { download, durationSeconds, Interval, isoUtc, localInputToMs, msToLocalInput, participationParts, stepSeries } from '../lib';
import { Badge, Dl, ErrorBox, Field, Head, Link, navigate, useAction, useLoad } from '../ui';
import { splitIds } from './programs';

const SIGNAL_TYPES = ['level', 'delta', 'multiplier', 'price', 'priceMultiplier', 'priceRelative', 'setpoint', 'x-loadControlCapacity', 'x-loadControlLevelOffset', 'x-loadControlPercentOffset', 'x-loadControlSetpoint'];

export function Events() {
  const events = useLoad(() => get('/events', { limit: 1000 }), [], 10000);
  const programs = useLoad(() => get('/programs', { limit: 1000 }), []);
  const byProgram = useMemo(() => {
    const m = new Map<string, any[]>();
    for (const e of events.data?.events ?? []) {
      const k = e.programID ?? e.marketContext;
      if (!m.has(k)) m.set(k, []);
      m.get(k)!.push(e);
    }
    m.forEach((l) => l.sort((a, b) => Date.parse(a.dtstart) - Date.parse(b.dtstart)));
    return m;
  }, [events.data]);
  const name = (pid: string) => programs.data?.programs?.find((p: any) => p.programID === pid)?.name ?? pid;
  return (
    <section aria-labelledby="h-events">
      <h1 id="h-events">Events</h1>
      <ErrorBox error={events.error} />
      {[...byProgram.entries()].map(([pid, list]) => (
        <div class="card">
          <h2>{name(pid)}</h2>
          <ol class="timeline">
            {list.map((e) => (
              <li>
                <Badge text={e.eventStatus} /> <Link to={`/events/${encodeURIComponent(e.eventID)}`}>{e.eventID}</Link>{' '}
                <span>
                  {e.dtstart} for {e.duration}
                </span>{' '}
                {e.participation && (
                  <small>
                    {e.participation.received} received, {e.participation.optIn} in, {e.participation.optOut} out
                  </small>
                )}
              </li>
            ))}
          </ol>
        </div>
      ))}
      {!byProgram.size && !events.loading && <p class="muted">No events.</p>}
      <EventForm programs={programs.data?.programs ?? []} done={(e) => navigate(`/events/${encodeURIComponent(e.eventID)}`)} />
    </section>
  );
}

interface FormState {
  marketContext: string;
  start: string;
  duration: string;
  signalName: string;
  signalType: string;
  intervals: Interval[];
  groups: string;
  vens: string;
  priority: number;
  comment: string;
}

function initial(ev: any | null, programs: any[]): FormState {
  if (ev) {
    const s = ev.signals?.[0] ?? {};
    return {
      marketContext: ev.marketContext,
      start: msToLocalInput(Date.parse(ev.dtstart)),
      duration: ev.duration,
      signalName: s.signalName ?? 'SIMPLE',
      signalType: s.signalType ?? 'level',
      intervals: (s.intervals ?? []).map((i: any) => ({ duration: i.duration, value: i.value })),
      groups: (ev.targets?.groupID ?? []).join(', '),
      vens: (ev.targets?.venID ?? []).join(', '),
      priority: ev.priority ?? 0,
      comment: ev.vtnComment ?? '',
    };
  }
  return {
    marketContext: programs[0]?.marketContext ?? '',
    start: msToLocalInput(Date.now() + 3600e3 - (Date.now() % 60000)),
    duration: 'PT1H',
    signalName: 'SIMPLE',
    signalType: 'level',
    intervals: [
      { duration: 'PT30M', value: 1 },
      { duration: 'PT30M', value: 2 },
    ],
    groups: '',
    vens: '',
    priority: 0,
    comment: '',
  };
}

// The EventRequest the form describes (docs/openapi.yaml).
export function eventBody(f: FormState): any {
  const targets: any = {};
  if (splitIds(f.groups).length) targets.groupID = splitIds(f.groups);
  if (splitIds(f.vens).length) targets.venID = splitIds(f.vens);
  const body: any = {
    marketContext: f.marketContext,
    dtstart: isoUtc(localInputToMs(f.start)),
    duration: f.duration,
    priority: f.priority,
    signals: [{ signalName: f.signalName, signalType: f.signalType, intervals: f.intervals }],
  };
  if (f.comment) body.vtnComment = f.comment;
  if (Object.keys(targets).length) body.targets = targets;
  return body;
}

export function EventForm({ programs, event, done }: { programs: any[]; event?: any; done: (e: any) => void }) {
  const [f, setF] = useState<FormState>(() => initial(event ?? null, programs));
  const act = useAction();
  const mc = f.marketContext || programs[0]?.marketContext || '';
  const startMs = localInputToMs(f.start);
  const series = useMemo(() => (Number.isFinite(startMs) ? stepSeries(startMs, f.intervals) : null), [startMs, f.intervals]);
  const total = f.intervals.reduce((s, i) => s + durationSeconds(i.duration), 0);
  // functional updates: two quick changes must not undo each other
  const up = (p: Partial<FormState>) => setF((o) => ({ ...o, ...p }));
  const setIv = (k: number, iv: Partial<Interval>) => setF((o) => ({ ...o, intervals: o.intervals.map((x, j) => (j === k ? { ...x, ...iv } : x)) }));
  const submit = (e: Event) => {
    e.preventDefault();
    act.run(async () => {
      const body = eventBody({ ...f, marketContext: mc });
      const r = event ? await api('PUT', `/events/${encodeURIComponent(event.eventID)}`, body) : await api('POST', '/events', body);
      done(r);
      return `Event ${r.eventID} ${event ? 'modified' : 'created'}.`;
    });
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="h-evform">
      <h2 id="h-evform">{event ? 'Modify the event' : 'New event'}</h2>
      <div class="row">
        <Field label="Program">
          <select value={mc} onChange={(e) => up({ marketContext: e.currentTarget.value })} disabled={!!event}>
            {programs.map((p) => (
              <option value={p.marketContext}>{p.name}</option>
            ))}
          </select>
        </Field>
        <Field label="Start (UTC)">
          <input type="datetime-local" value={f.start} required onInput={(e) => up({ start: e.currentTarget.value })} />
        </Field>
        <Field label="Duration" hint="ISO 8601, e.g. PT1H">
          <input value={f.duration} required onInput={(e) => up({ duration: e.currentTarget.value })} />
        </Field>
        <Field label="Priority">
          <input type="number" min={0} value={f.priority} onInput={(e) => up({ priority: Number(e.currentTarget.value) })} />
        </Field>
      </div>
      <div class="row">
        <Field label="Signal name">
          <input value={f.signalName} onInput={(e) => up({ signalName: e.currentTarget.value })} />
        </Field>
        <Field label="Signal type">
          <select value={f.signalType} onChange={(e) => up({ signalType: e.currentTarget.value })}>
            {SIGNAL_TYPES.map((t) => (
              <option>{t}</option>
            ))}
          </select>
        </Field>
        <Field label="Target groups" hint="groupIDs, comma-separated; none: the whole program">
          <input name="groups" value={f.groups} onInput={(e) => up({ groups: e.currentTarget.value })} />
        </Field>
        <Field label="Target VENs">
          <input value={f.vens} placeholder="venIDs" onInput={(e) => up({ vens: e.currentTarget.value })} />
        </Field>
      </div>
      <fieldset>
        <legend>Intervals</legend>
        {f.intervals.map((iv, k) => (
          <div class="row">
            <Field label={`Interval ${k + 1} duration`}>
              <input value={iv.duration} onInput={(e) => setIv(k, { duration: e.currentTarget.value })} />
            </Field>
            <Field label={`Interval ${k + 1} value`}>
              <input type="number" step="any" value={iv.value} onInput={(e) => setIv(k, { value: Number(e.currentTarget.value) })} />
            </Field>
            <button type="button" aria-label={`Remove interval ${k + 1}`} disabled={f.intervals.length < 2} onClick={() => setF({ ...f, intervals: f.intervals.filter((_, j) => j !== k) })}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" onClick={() => setF({ ...f, intervals: [...f.intervals, { duration: 'PT15M', value: 0 }] })}>
          Add interval
        </button>
      </fieldset>
      {series ? <Chart xs={series.xs} ys={series.ys} label={`${f.signalName} (${f.signalType})`} step /> : <p class="error">An interval's duration or value is not valid.</p>}
      {series && Math.abs(total - durationSeconds(f.duration)) > 0.5 && (
        <p class="warn" role="status">
          The intervals last {total} s; the event {durationSeconds(f.duration)} s.
        </p>
      )}
      <button type="submit" disabled={act.busy || !series}>
        {event ? 'Send the modification' : 'Create event'}
      </button>
      <act.Status />
    </form>
  );
}

export function EventPage({ eventID }: { eventID: string }) {
  const id = encodeURIComponent(eventID);
  const ev = useLoad(() => get(`/events/${id}`), [eventID], 10000);
  const part = useLoad(() => get(`/events/${id}/vens`), [eventID], 3000);
  const programs = useLoad(() => get('/programs', { limit: 1000 }), []);
  const [editing, setEditing] = useState(false);
  const [notice, setNotice] = useState<string | null>(null); // the form's result outlives the form
  const act = useAction();
  const e = ev.data;
  const rows: any[] = part.data?.vens ?? [];
  const counts = part.data?.counts ?? {};
  const bar = participationParts(counts);
  return (
    <section aria-labelledby="h-event">
      <p>
        <Link to="/events">Events</Link> / {eventID}
      </p>
      <h1 id="h-event">Event {eventID}</h1>
      <ErrorBox error={ev.error} />
      {e && (
        <div class="card">
          <Dl
            rows={[
              ['Status', <Badge text={e.eventStatus} />],
              ['Program', e.programID],
              ['Start', e.dtstart],
              ['Duration', e.duration],
              ['Modification', e.modificationNumber],
              ['Targets', e.targets ? JSON.stringify(e.targets) : 'the whole program'],
            ]}
          />
          <div class="row">
            <button disabled={e.eventStatus === 'cancelled' || e.eventStatus === 'completed'} onClick={() => setEditing(!editing)} aria-expanded={editing}>
              Modify
            </button>
            <button
              class="danger"
              disabled={act.busy || e.eventStatus === 'cancelled' || e.eventStatus === 'completed'}
              onClick={() =>
                confirm(`Cancel event ${eventID}? The cancellation reaches ${rows.length} VEN(s).`) &&
                act.run(async () => {
                  await api('POST', `/events/${id}/cancel`, {});
                  ev.reload();
                  part.reload();
                  return `Cancelled; ${rows.length} VEN(s) get it on their next poll.`;
                })
              }
            >
              Cancel event
            </button>
          </div>
          <act.Status />
          {notice && (
            <p class="ok" role="status">
              {notice}
            </p>
          )}
        </div>
      )}
      {e && editing && (
        <EventForm
          programs={programs.data?.programs ?? []}
          event={e}
          done={(r) => {
            setEditing(false);
            setNotice(`Event ${r.eventID} modified (modification ${r.modificationNumber}).`);
            ev.reload();
          }}
        />
      )}
      <div class="card" aria-labelledby="h-part">
        <h2 id="h-part">Participation</h2>
        <ErrorBox error={part.error} />
        <p class="counts" aria-live="polite">
          <span data-count="received">Received: {counts.received ?? 0}</span>
          <span data-count="optIn">Opted in: {counts.optIn ?? 0}</span>
          <span data-count="optOut">Opted out: {counts.optOut ?? 0}</span>
          <span data-count="none">No answer: {counts.none ?? 0}</span>
        </p>
        <div class="bar" role="img" aria-label={`${counts.optIn ?? 0} opted in, ${counts.optOut ?? 0} opted out, ${counts.none ?? 0} no answer`}>
          <span class="in" style={{ width: `${bar.optIn}%` }} />
          <span class="out" style={{ width: `${bar.optOut}%` }} />
          <span class="none" style={{ width: `${bar.none}%` }} />
        </div>
        <button onClick={() => getText(`/events/${id}/vens`, { format: 'csv' }).then((t) => download(`${eventID}-participation.csv`, t, 'text/csv'))}>Export CSV</button>
        <table class="grid">
          <Head cols={['VEN', 'Received mod.', 'Opt', 'Source', 'Answered']} />
          <tbody>
            {rows.map((r) => (
              <tr data-ven={r.venID}>
                <td>
                  <Link to={`/vens/${encodeURIComponent(r.venID)}`}>{r.venID}</Link>
                </td>
                <td>{r.receivedModificationNumber ?? '-'}</td>
                <td>{r.opt}</td>
                <td>{r.optSource}</td>
                <td>{r.respondedDateTime ?? '-'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
