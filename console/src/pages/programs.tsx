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

function CreateProgram({ done }: { done: () => void }) {
  const [name, setName] = useState('');
  const [mc, setMc] = useState('');
  const act = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        act.run(async () => {
          const p = await api('POST', '/programs', name ? { name, marketContext: mc } : { marketContext: mc });
          done();
          return `Program ${p.programID} created.`;
        });
      }}
    >
      <h3>New program</h3>
      <Field label="Name">
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      <Field label="marketContext">
        <input value={mc} required placeholder="http://utility.example/programs/cpp" onInput={(e) => setMc(e.currentTarget.value)} />
      </Field>
      <button type="submit" disabled={act.busy}>
        Create program
      </button>
      <act.Status />
    </form>
  );
}

function CreateGroup({ done }: { done: () => void }) {
  const [gid, setGid] = useState('');
  const [vens, setVens] = useState('');
  const act = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        act.run(async () => {
          const g = await api('PUT', `/groups/${encodeURIComponent(gid)}`, { venIDs: splitIds(vens) });
          done();
          return `Group ${g.groupID} has ${g.venIDs.length} member(s).`;
        });
      }}
    >
      <h3>New group</h3>
      <Field label="groupID">
        <input value={gid} required onInput={(e) => setGid(e.currentTarget.value)} />
      </Field>
      <Field label="Members">
        <input value={vens} placeholder="venIDs, comma-separated" onInput={(e) => setVens(e.currentTarget.value)} />
      </Field>
      <button type="submit" disabled={act.busy}>
        Create group
      </button>
      <act.Status />
    </form>
  );
}
