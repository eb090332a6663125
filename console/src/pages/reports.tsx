// Reports: a VEN's registered reports and the VTN's requests, a line chart
// of received telemetry for one rID and time range, request and cancel.
import { useMemo, useState } from 'preact/hooks';
import { api, get } from '../api';
import { Chart } from '../charts';
import { isoUtc, localInputToMs, msToLocalInput, reportSeries } from '../lib';
import { Badge, ErrorBox, Field, Head, useAction, useLoad } from '../ui';

export function Reports() {
  const initialVen = new URLSearchParams(location.search).get('venID') ?? '';
  const [venInput, setVenInput] = useState(initialVen);
  const [venID, setVenID] = useState(initialVen);
  return (
    <section aria-labelledby="h-reports">
      <h1 id="h-reports">Reports</h1>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setVenID(venInput.trim());
          history.replaceState(null, '', `?venID=${encodeURIComponent(venInput.trim())}`);
        }}
      >
        <Field label="VEN">
          <input name="venID" value={venInput} placeholder="venID" onInput={(e) => setVenInput(e.currentTarget.value)} />
        </Field>
        <button type="submit">Show</button>
      </form>
      {venID && <VenReports venID={venID} key={venID} />}
    </section>
  );
}

// A VEN's registered reports and requests, with request and cancel; with
// telemetry, the chart below them (the Reports page; a VEN's page has the
// lists only).
export function VenReports({ venID, telemetry = true }: { venID: string; telemetry?: boolean }) {
  const id = encodeURIComponent(venID);
  const r = useLoad(() => get(`/vens/${id}/reports`), [venID], 10000);
  const act = useAction();
  const reports: any[] = r.data?.reports ?? [];
  const rids = useMemo(() => reports.flatMap((rep) => (rep.descriptions ?? []).map((d: any) => d.rID as string)), [r.data]);
  return (
    <>
      <ErrorBox error={r.error} />
      <div class="card">
        <h2>Registered reports</h2>
        <table class="grid">
          <Head cols={['reportSpecifierID', 'Name', 'rIDs', '']} />
          <tbody>
            {reports.map((rep) => (
              <tr>
                <td>{rep.reportSpecifierID}</td>
                <td>{rep.reportName}</td>
                <td>{(rep.descriptions ?? []).map((d: any) => d.rID).join(', ')}</td>
                <td>
                  <button
                    disabled={act.busy}
                    onClick={() =>
                      act.run(async () => {
                        const q = await api('POST', `/vens/${id}/reports`, { reportSpecifierID: rep.reportSpecifierID });
                        r.reload();
                        return `Requested: ${q.reportRequestID}.`;
                      })
                    }
                  >
                    Request
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!reports.length && <p class="muted">The VEN registered no report yet.</p>}
      </div>
      <div class="card">
        <h2>Requests</h2>
        <table class="grid">
          <Head cols={['reportRequestID', 'Report', 'State', 'Granularity', 'Last update', '']} />
          <tbody>
            {(r.data?.requests ?? []).map((q: any) => (
              <tr>
                <td>{q.reportRequestID}</td>
                <td>{q.reportName ?? q.reportSpecifierID}</td>
                <td>
                  <Badge text={q.state} />
                </td>
                <td>{q.granularity}</td>
                <td>{q.lastUpdate ? isoUtc(q.lastUpdate) : '-'}</td>
                <td>
                  {['requested', 'created', 'active', 'overdue'].includes(q.state) && (
                    <button
                      class="danger"
                      disabled={act.busy}
                      onClick={() =>
                        act.run(async () => {
                          const c = await api('DELETE', `/vens/${id}/reports/${encodeURIComponent(q.reportRequestID)}`);
                          r.reload();
                          return `Request ${c.reportRequestID}: ${c.state}.`;
                        })
                      }
                    >
                      Cancel
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <act.Status />
      </div>
      {telemetry && <Telemetry venID={venID} rids={rids} />}
    </>
  );
}

function Telemetry({ venID, rids }: { venID: string; rids: string[] }) {
  const now = Date.now();
  const [rID, setRid] = useState('');
  const [from, setFrom] = useState(msToLocalInput(now - 3600e3));
  const [to, setTo] = useState(msToLocalInput(now + 60e3));
  const [shown, setShown] = useState<{ rID: string; from: string; to: string } | null>(null);
  const rid = rID || rids[0] || '';
  const data = useLoad(
    () =>
      shown
        ? get('/reports', { venID, rID: shown.rID, from: isoUtc(localInputToMs(shown.from)), to: isoUtc(localInputToMs(shown.to)), limit: 5000 })
        : Promise.resolve(null),
    [shown, venID],
  );
  const series = useMemo(() => reportSeries(data.data?.data ?? [], shown?.rID), [data.data, shown]);
  return (
    <div class="card">
      <h2>Telemetry</h2>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setShown({ rID: rid, from, to });
        }}
      >
        <Field label="rID">
          <select name="rID" value={rid} onChange={(e) => setRid(e.currentTarget.value)}>
            {rids.map((x) => (
              <option>{x}</option>
            ))}
          </select>
        </Field>
        <Field label="From (UTC)">
          <input type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </Field>
        <Field label="To (UTC)">
          <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={!rid}>
          Draw
        </button>
      </form>
      <ErrorBox error={data.error} />
      {shown && <Chart xs={series.xs} ys={series.ys} label={`${venID} ${shown.rID}`} />}
      {data.data?.next_cursor && <p class="muted">More values in this range than one page: the chart shows the first {data.data.data.length}.</p>}
    </div>
  );
}
