// Small shared pieces: routing under /ui/, data loading, error display.
import { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

export const BASE = '/ui';

// The path inside the console ("/vens/x") of the current location.
export function appPath(): string {
  const p = location.pathname;
  return p.startsWith(BASE) ? p.slice(BASE.length) || '/' : '/';
}

const listeners = new Set<() => void>();
export function navigate(to: string): void {
  history.pushState(null, '', BASE + to);
  listeners.forEach((f) => f());
}
export function useRoute(): string {
  const [p, setP] = useState(appPath());
  useEffect(() => {
    const f = () => setP(appPath());
    listeners.add(f);
    window.addEventListener('popstate', f);
    return () => {
      listeners.delete(f);
      window.removeEventListener('popstate', f);
    };
  }, []);
  return p;
}

// An in-app link: a real <a href> (keyboard, middle click) that routes
// without reloading on a plain click.
export function Link(props: { to: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' | undefined }) {
  const onClick = (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={BASE + props.to} onClick={onClick} class={props.class} aria-current={props['aria-current']}>
      {props.children}
    </a>
  );
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | Error | null;
  loading: boolean;
  reload: () => void;
}

// Loads f() when deps change and, with everyMs, again on that period while
// the page is shown (participation and health are live).
export function useLoad<T>(f: () => Promise<T>, deps: unknown[], everyMs = 0): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: Error | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const seq = useRef(0);
  const run = useCallback(() => {
    const my = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    f().then(
      (data) => my === seq.current && setState({ data, error: null, loading: false }),
      (error) => my === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, deps);
  useEffect(() => {
    run();
    if (!everyMs) return;
    const t = setInterval(run, everyMs);
    return () => clearInterval(t);
  }, [run, everyMs]);
  return { ...state, reload: run };
}

// An API error as the API said it.
export function ErrorBox({ error }: { error: Error | null | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

// Runs an action, keeping its error or success line for display.
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const run = async (f: () => Promise<string | void>) => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const msg = await f();
      if (msg) setDone(msg);
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  const Status = () => (
    <>
      <ErrorBox error={error} />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
    </>
  );
  return { busy, error, run, Status };
}

export function Field(props: { label: string; children: JSX.Element; hint?: string }) {
  return (
    <label class="field">
      <span>{props.label}</span>
      {props.children}
      {props.hint && <small>{props.hint}</small>}
    </label>
  );
}

export function Badge({ text }: { text: string }) {
  return <span class={`badge b-${text.replace(/\s+/g, '-')}`}>{text}</span>;
}

export function Dl({ rows }: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="kv">
      {rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v === null || v === undefined || v === '' ? '-' : v}</dd>
        </>
      ))}
    </dl>
  );
}

// A table's header row; an empty name is an action column (named for
// screen readers only).
export function Head({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c) => (
          <th scope="col">{c || <span class="sr-only">Action</span>}</th>
        ))}
      </tr>
    </thead>
  );
}
