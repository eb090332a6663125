// Fleet: the VENs, filtered and paged by the API (cursor paging: the
// console keeps the cursors of the pages seen to go back).
import { useState } from 'preact/hooks';
import { api, get } from '../api';
import { ago, venBadges } from '../lib';
import { Badge, ErrorBox, Field, Head, Link, navigate, useAction, useLoad } from '../ui';

const STATES = ['', 'provisioned', 'registered', 'online', 'offline', 'overdue', 'push_undeliverable'];
const PAGE = 50;

export function Fleet() {
  const [f, setF] = useState({ q: '', program: '', group: '', state: '' });
  const [form, setForm] = useState(f);
  // functional update: two quick changes must not undo each other
  const set = (k: keyof typeof f, v: string) => setForm((o) => ({ ...o, [k]: v }));
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1];
  const vens = useLoad(
    () => get('/vens', { limit: PAGE, cursor, q: f.q, program: f.program, group: f.group, state: f.state }),
    [f, cursor],
    10000,
  );
  const programs = useLoad(() => get('/programs', { limit: 1000 }), []);
  const groups = useLoad(() => get('/groups', { limit: 1000 }), []);
  const apply = (e: Event) => {
    e.preventDefault();
    setCursors([null]);
    setF({ ...form });
  };
  const list: any[] = vens.data?.vens ?? [];
  return (
    <section aria-labelledby="h-fleet">
      <h1 id="h-fleet">Fleet</h1>
      <form class="filters" onSubmit={apply} role="search">
        <Field label="Search">
          <input type="search" value={form.q} placeholder="venID or name" onInput={(e) => set('q', e.currentTarget.value)} />
        </Field>
        <Field label="State">
          <select value={form.state} onChange={(e) => set('state', e.currentTarget.value)}>
            {STATES.map((s) => (
              <option value={s}>{s ? s.replace('_', ' ') : 'any'}</option>
            ))}
          </select>
        </Field>
        <Field label="Program">
          <select value={form.program} onChange={(e) => set('program', e.currentTarget.value)}>
            <option value="">any</option>
            {(programs.data?.programs ?? []).map((p: any) => (
              <option value={p.programID}>{p.name}</option>
            ))}
          </select>
        </Field>
        <Field label="Group">
          <select value={form.group} onChange={(e) => set('group', e.currentTarget.value)}>
            <option value="">any</option>
            {(groups.data?.groups ?? []).map((g: any) => (
              <option value={g.groupID}>{g.name}</option>
            ))}
          </select>
        </Field>
        <button type="submit">Apply</button>
      </form>
      <ErrorBox error={vens.error} />
      <table class="grid" aria-busy={vens.loading}>
        <caption class="sr-only">VENs</caption>
        <Head cols={['venID', 'Name', 'State', 'Last poll', 'Queued']} />
        <tbody>
          {list.map((v) => (
            <tr data-ven={v.venID}>
              <td>
                <Link to={`/vens/${encodeURIComponent(v.venID)}`}>{v.venID}</Link>
              </td>
              <td>{v.venName ?? '-'}</td>
              <td>
                {venBadges(v).map((b) => (
                  <Badge text={b} />
                ))}
              </td>
              <td>{ago(v.lastPoll)}</td>
              <td>{v.queued ?? '-'}</td>
            </tr>
          ))}
          {!list.length && !vens.loading && (
            <tr>
              <td colSpan={5} class="muted">
                No VENs match.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        <button disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <span>Page {cursors.length}</span>
        <button disabled={!vens.data?.next_cursor} onClick={() => setCursors([...cursors, vens.data.next_cursor])}>
          Next page
        </button>
      </nav>
      <Provision />
    </section>
  );
}

function Provision() {
  const [venName, setName] = useState('');
  const [fingerprint, setFp] = useState('');
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    act.run(async () => {
      const body: Record<string, string> = {};
      if (venName) body.venName = venName;
      if (fingerprint) body.fingerprint = fingerprint;
      const v = await api('POST', '/vens', body);
      navigate(`/vens/${encodeURIComponent(v.venID)}`);
    });
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="h-prov">
      <h2 id="h-prov">Pre-provision a VEN</h2>
      <div class="row">
        <Field label="venName">
          <input name="venName" value={venName} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Certificate fingerprint" hint="optional, e.g. 09:71:9E:0E:51:C0:8F:05:56:C9">
          <input name="fingerprint" value={fingerprint} onInput={(e) => setFp(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={act.busy}>
          Provision
        </button>
      </div>
      <act.Status />
    </form>
  );
}
