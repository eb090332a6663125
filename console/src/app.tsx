// The shell: the token prompt, the navigation and the page for the path.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, checkToken, clearToken, getToken, setToken, setUnauthorizedHandler } from './api';
import { Events, EventPage } from './pages/events';
import { Fleet } from './pages/fleet';
import { Health } from './pages/health';
import { Programs } from './pages/programs';
import { Reports } from './pages/reports';
import { VenPage } from './pages/ven';
import { ErrorBox, Field, Link, useRoute } from './ui';

const NAV: [string, string][] = [
  ['/', 'Fleet'],
  ['/programs', 'Programs and groups'],
  ['/events', 'Events'],
  ['/reports', 'Reports'],
  ['/health', 'Health'],
];

export function Login({ onToken, why }: { onToken: (t: string) => void; why?: Error | null }) {
  const [t, setT] = useState('');
  const [err, setErr] = useState<Error | null>(why ?? null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const bad = await checkToken(t).catch((x: Error) => x);
    setBusy(false);
    if (bad) setErr(bad);
    else onToken(t);
  };
  return (
    <main class="login">
      <form class="card" onSubmit={submit} aria-labelledby="h-login">
        <h1 id="h-login">openvtn console</h1>
        <p>The management API's bearer token (VTN_API_TOKEN). It is kept for this browser tab only.</p>
        <Field label="API token">
          <input id="token" type="password" autoComplete="off" required value={t} onInput={(e) => setT(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={busy || !t}>
          Sign in
        </button>
        <ErrorBox error={err} />
      </form>
    </main>
  );
}

function Page({ path }: { path: string }) {
  let m: RegExpMatchArray | null;
  if (path === '/' || path === '') return <Fleet />;
  if ((m = path.match(/^\/vens\/([^/]+)\/?$/))) return <VenPage venID={decodeURIComponent(m[1])} />;
  if (path.startsWith('/programs')) return <Programs />;
  if ((m = path.match(/^\/events\/([^/]+)\/?$/))) return <EventPage eventID={decodeURIComponent(m[1])} />;
  if (path.startsWith('/events')) return <Events />;
  if (path.startsWith('/reports')) return <Reports />;
  if (path.startsWith('/health')) return <Health />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No page at {path}. <Link to="/">Fleet</Link>
      </p>
    </section>
  );
}

export function App() {
  const [token, setTok] = useState(getToken());
  const [why, setWhy] = useState<ApiError | null>(null);
  const path = useRoute();
  useEffect(() => {
    setUnauthorizedHandler((e) => {
      clearToken();
      setWhy(e);
      setTok(null);
    });
  }, []);
  if (!token)
    return (
      <Login
        why={why}
        onToken={(t) => {
          setToken(t);
          setWhy(null);
          setTok(t);
        }}
      />
    );
  const current = (to: string) => (to === '/' ? path === '/' || path.startsWith('/vens') : path.startsWith(to));
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">openvtn</span>
        <nav aria-label="Main">
          {NAV.map(([to, label]) => (
            <Link to={to} aria-current={current(to) ? 'page' : undefined}>
              {label}
            </Link>
          ))}
        </nav>
        <button
          class="link"
          onClick={() => {
            clearToken();
            setTok(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={path} key={path} />
      </main>
    </>
  );
}
