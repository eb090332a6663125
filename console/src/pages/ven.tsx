// One VEN: its record, certificate, queue, events with its opt, opt
// schedules, reports and requests; and the actions on it.
import { useState } from 'preact/hooks';
import { api, get } from '../api';
import { ago, download, venBadges } from '../lib';
import { VenReports } from './reports';
import { Badge, Dl, ErrorBox, Field, Head, Link, navigate, useAction, useLoad } from '../ui';

export function VenPage({ venID }: { venID: string }) {
  const id = encodeURIComponent(venID);
  const ven = useLoad(() => get(`/vens/${id}`), [venID], 10000);
  const certs = useLoad(() => get('/certificates', { venID, limit: 100 }), [venID]);
  const opts = useLoad(() => get(`/vens/${id}/opts`), [venID]);
  const events = useLoad(() => venEvents(venID), [venID], 15000);
  const v = ven.data;
  return (
    <section aria-labelledby="h-ven">
      <p>
        <Link to="/">Fleet</Link> / {venID}
      </p>
      <h1 id="h-ven">VEN {v?.venName ?? venID}</h1>
      <ErrorBox error={ven.error} />
      {v && (
        <div class="cols">
          <div class="card">
            <h2>Registration</h2>
            <p>
              {venBadges(v).map((b) => (
                <Badge text={b} />
              ))}
            </p>
            <Dl
              rows={[
                ['venID', v.venID],
                ['venName', v.venName],
                ['registrationID', v.registrationID],
                ['Registered', v.registeredAt],
                ['Created', v.createdAt],
                ['Transport', v.httpPullModel === null ? null : v.httpPullModel ? 'pull' : `push ${v.transportAddress ?? ''}`],
                ['Last poll', v.lastPoll ? `${v.lastPoll} (${ago(v.lastPoll)})` : null],
                ['Queued messages', v.queuedMessages ?? v.queued],
                ['Reregistration pending', v.reregistrationPending ? 'yes' : 'no'],
                ['Push undelivered', v.pushUndelivered ? `${v.pushUndelivered.attempts} attempts: ${v.pushUndelivered.error}` : null],
              ]}
            />
          </div>
          <div class="card" aria-labelledby="h-cert">
            <h2 id="h-cert">Certificate</h2>
            <Dl rows={[['Fingerprint', v.fingerprint && <code>{v.fingerprint}</code>]]} />
            <ErrorBox error={certs.error} />
            <CertTable certs={certs.data?.certificates ?? []} reload={certs.reload} />
            <IssueCert venID={venID} done={() => (certs.reload(), ven.reload())} />
          </div>
        </div>
      )}
      {v && <Actions ven={v} reload={ven.reload} />}
      <div class="card">
        <h2>Events</h2>
        <ErrorBox error={events.error} />
        <table class="grid">
          <Head cols={['Event', 'Status', 'Start', 'Its opt', 'Source']} />
          <tbody>
            {(events.data ?? []).map((r) => (
              <tr>
                <td>
                  <Link to={`/events/${encodeURIComponent(r.event.eventID)}`}>{r.event.eventID}</Link>
                </td>
                <td>{r.event.eventStatus}</td>
                <td>{r.event.dtstart}</td>
                <td>{r.row.opt}</td>
                <td>{r.row.optSource}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="card">
        <h2>Opt schedules</h2>
        <ErrorBox error={opts.error} />
        <table class="grid">
          <Head cols={['optID', 'Type', 'Event or availability', 'Reason']} />
          <tbody>
            {[...(opts.data?.schedules ?? []), ...(opts.data?.eventOpts ?? [])].map((o: any) => (
              <tr>
                <td>{o.optID}</td>
                <td>{o.optType}</td>
                <td>{o.eventID ? `event ${o.eventID}` : (o.availability ?? []).map((a: any) => `${a.dtstart} +${a.duration}`).join(', ')}</td>
                <td>{o.optReason ?? '-'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <VenReports venID={venID} telemetry={false} />
      <p>
        <Link to={`/reports?venID=${id}`}>Telemetry of this VEN</Link>
      </p>
    </section>
  );
}

// The events that reach this VEN, with its participation row: read from
// each not-ended event's participation list (the API has no per-VEN event
// index; a page of events is enough for an operator's look).
async function venEvents(venID: string): Promise<{ event: any; row: any }[]> {
  const evs = await get('/events', { limit: 100 });
  const out: { event: any; row: any }[] = [];
  for (const e of evs.events ?? []) {
    if (e.eventStatus === 'completed') continue;
    const p = await get(`/events/${encodeURIComponent(e.eventID)}/vens`);
    const row = (p.vens ?? []).find((r: any) => r.venID === venID);
    if (row) out.push({ event: e, row });
  }
  return out;
}

function CertTable({ certs, reload }: { certs: any[]; reload: () => void }) {
  const act = useAction();
  if (!certs.length) return <p class="muted">No certificate issued through the API.</p>;
  return (
    <>
      <table class="grid">
        <Head cols={['Serial', 'Fingerprint', 'Expires', 'Status', '']} />
        <tbody>
          {certs.map((c) => (
            <tr>
              <td>
                <code title={c.serial}>{c.serial.slice(0, 8)}…</code>
              </td>
              <td>
                <code>{c.fingerprint}</code>
              </td>
              <td title={c.notAfter}>{c.notAfter.slice(0, 10)}</td>
              <td>{c.status}</td>
              <td>
                {c.status === 'valid' && (
                  <button
                    class="danger"
                    disabled={act.busy}
                    onClick={() =>
                      confirm(`Revoke certificate ${c.serial}? The VEN can no longer connect with it.`) &&
                      act.run(async () => {
                        const r = await api('POST', `/certificates/${c.serial}/revoke`, { reason: 'unspecified' });
                        reload();
                        return `Revoked${r.unbound ? ' and unbound from the VEN' : ''}.`;
                      })
                    }
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <act.Status />
    </>
  );
}

function IssueCert({ venID, done }: { venID: string; done: () => void }) {
  const [keyType, setKey] = useState('ec');
  const [days, setDays] = useState(825);
  const [issued, setIssued] = useState<any>(null);
  const act = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        act.run(async () => {
          const c = await api('POST', '/certificates', { venID, keyType, days });
          setIssued(c);
          done();
          return `Issued ${c.fingerprint}; download the PEM now: the key is not kept.`;
        });
      }}
    >
      <div class="row">
        <Field label="Key type">
          <select value={keyType} onChange={(e) => setKey(e.currentTarget.value)}>
            <option value="ec">ECC P-256</option>
            <option value="rsa">RSA 2048</option>
          </select>
        </Field>
        <Field label="Days">
          <input type="number" min={1} max={3650} value={days} onInput={(e) => setDays(Number(e.currentTarget.value))} />
        </Field>
        <button type="submit" disabled={act.busy}>
          Issue certificate
        </button>
      </div>
      <act.Status />
      {issued && (
        <div class="row">
          <button type="button" onClick={() => download(`${venID}.crt.pem`, issued.certificate, 'application/x-pem-file')}>
            Download certificate PEM
          </button>
          {issued.privateKey && (
            <button type="button" onClick={() => download(`${venID}.key.pem`, issued.privateKey, 'application/x-pem-file')}>
              Download private key PEM
            </button>
          )}
        </div>
      )}
    </form>
  );
}

function Actions({ ven, reload }: { ven: any; reload: () => void }) {
  const act = useAction();
  const id = encodeURIComponent(ven.venID);
  return (
    <div class="card">
      <h2>Actions</h2>
      <div class="row">
        <button
          disabled={act.busy || ven.state !== 'registered'}
          onClick={() =>
            act.run(async () => {
              const r = await api('POST', `/vens/${id}/reregister`);
              reload();
              return r.message ?? r.status;
            })
          }
        >
          Ask to reregister
        </button>
        <button
          class="danger"
          disabled={act.busy}
          onClick={() =>
            confirm(`Cancel the registration of ${ven.venID} and delete its record?`) &&
            act.run(async () => {
              const r = await api('DELETE', `/vens/${id}`);
              if (r.state === 'deleted') navigate('/');
              else reload();
              return r.message ?? `VEN ${r.state}`;
            })
          }
        >
          Cancel registration
        </button>
      </div>
      <act.Status />
    </div>
  );
}
