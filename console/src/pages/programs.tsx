// Programs and groups: list, create, enrol VENs.
import { useState } from 'preact/hooks';
import { api, get } from '../api';
import { ErrorBox, Field, useAction, useLoad } from '../ui';

// "a, b c" -> ["a", "b", "c"]
export function splitIds(s: string): string[] {
  return s.split(/[\s,]+/).filter(Boolean);
}

export function Programs() {
  const programs = useLoad(() => get('/programs', { limit: 1000 }), []);
  const groups = useLoad(() => get('/groups', { limit: 1000 }), []);
  return (
    <section aria-labelledby="h-prog">
      <h1 id="h-prog">Programs and groups</h1>
      <div class="cols">
        <div class="card">
          <h2>Programs</h2>
          <ErrorBox error={programs.error} />
          <ul class="plain">
            {(programs.data?.programs ?? []).map((p: any) => (
              <Member kind="program" id={p.programID} title={`${p.name} (${p.marketContext})`} />
            ))}
          </ul>
          <CreateProgram done={programs.reload} />
        </div>
        <div class="card">
          <h2>Groups</h2>
          <ErrorBox error={groups.error} />
          <ul class="plain">
            {(groups.data?.groups ?? []).map((g: any) => (
              <Member kind="group" id={g.groupID} title={g.name} />
            ))}
          </ul>
          <CreateGroup done={groups.reload} />
        </div>
      </div>
    </section>
  );
}

// One program or group, its members on demand, and a form to enrol VENs.
function Member({ kind, id, title }: { kind: 'program' | 'group'; id: string; title: string }) {
  const [open, setOpen] = useState(false);
  const [add, setAdd] = useState('');
  const base = `/${kind}s/${encodeURIComponent(id)}`;
  const members = useLoad(
    () => (open ? (kind === 'group' ? get(base) : get(`${base}/vens`, { limit: 1000 })) : Promise.resolve(null)),
    [open, id],
  );
  const act = useAction();
  return (
    <li>
      <button class="link" aria-expanded={open} onClick={() => setOpen(!open)}>
        {title} <small>{id}</small>
      </button>
      {open && (
        <div class="inset">
          <ErrorBox error={members.error} />
          <p>Members: {(members.data?.venIDs ?? []).join(', ') || 'none'}</p>
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              act.run(async () => {
                const r = await api('POST', `${base}/vens`, { add: splitIds(add) });
                setAdd('');
                members.reload();
                return `${r.added ?? 0} added, ${r.members ?? '?'} member(s).`;
              });
            }}
          >
            <Field label={`Enrol VENs in ${id}`}>
              <input value={add} placeholder="venIDs, comma-separated" onInput={(e) => setAdd(e.currentTarget.value)} />
            </Field>
            <button type="submit" disabled={act.busy || !add.trim()}>
              Enrol
            </button>
          </form>
          <act.Status />
        </div>
      )}
    </li>
  );
}

// A small create form of two text fields; send returns the status line.
function CreateForm(props: {
  title: string;
  fields: [string, string, boolean][]; // label, placeholder, required
  submit: string;
  send: (values: string[]) => Promise<string>;
}) {
  const [values, setValues] = useState(props.fields.map(() => ''));
  const act = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        act.run(() => props.send(values));
      }}
    >
      <h3>{props.title}</h3>
      {props.fields.map(([label, placeholder, required], k) => (
        <Field label={label}>
          <input
            value={values[k]}
            required={required}
            placeholder={placeholder}
            onInput={(e) => {
              const v = e.currentTarget.value;
              setValues((o) => o.map((x, j) => (j === k ? v : x)));
            }}
          />
        </Field>
      ))}
      <button type="submit" disabled={act.busy}>
        {props.submit}
      </button>
      <act.Status />
    </form>
  );
}

function CreateProgram({ done }: { done: () => void }) {
  return (
    <CreateForm
      title="New program"
      fields={[
        ['Name', '', false],
        ['marketContext', 'http://utility.example/programs/cpp', true],
      ]}
      submit="Create program"
      send={async ([name, marketContext]) => {
        const p = await api('POST', '/programs', name ? { name, marketContext } : { marketContext });
        done();
        return `Program ${p.programID} created.`;
      }}
    />
  );
}

function CreateGroup({ done }: { done: () => void }) {
  return (
    <CreateForm
      title="New group"
      fields={[
        ['groupID', '', true],
        ['Members', 'venIDs, comma-separated', false],
      ]}
      submit="Create group"
      send={async ([gid, vens]) => {
        const g = await api('PUT', `/groups/${encodeURIComponent(gid)}`, { venIDs: splitIds(vens) });
        done();
        return `Group ${g.groupID} has ${g.venIDs.length} member(s).`;
      }}
    />
  );
}
