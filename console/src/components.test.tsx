// Component tests: the pages render what the API answered (a fake fetch
// answers like the API, docs/openapi.yaml) and send what the form says.
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App, Login } from './app';
import { eventBody } from './pages/events';
import { setToken } from './api';

type Handler = (url: URL, init: RequestInit) => { status: number; body: unknown };
let calls: { url: URL; init: RequestInit }[] = [];

function fakeApi(h: Handler) {
  calls = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (u: string, init: RequestInit) => {
      const url = new URL(u, 'http://vtn.test');
      calls.push({ url, init });
      const r = h(url, init);
      const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      return new Response(text, { status: r.status, headers: { 'Content-Type': 'application/json' } });
    }),
  );
}

async function settle() {
  for (let i = 0; i < 5; i++) await act(async () => new Promise((r) => setTimeout(r, 0)));
}

// Lets the fake fetch answer and the page render until cond holds (at most
// 100 turns of the event loop, so a broken page fails instead of hanging).
async function until(cond: () => unknown) {
  for (let i = 0; i < 100 && !cond(); i++) await act(async () => new Promise((r) => setTimeout(r, 5)));
  expect(cond()).toBeTruthy();
}

let root: HTMLElement;
beforeEach(() => {
  sessionStorage.clear();
  history.replaceState(null, '', '/ui/');
  root = document.createElement('div');
  document.body.appendChild(root);
});
afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
});

function type(el: HTMLInputElement, v: string) {
  el.value = v;
  el.dispatchEvent(new Event('input', { bubbles: true }));
}

describe('Login', () => {
  it('shows the API error of a wrong token and keeps nothing', async () => {
    fakeApi(() => ({ status: 401, body: { error: 'missing or wrong bearer token' } }));
    const got: string[] = [];
    render(<Login onToken={(t) => got.push(t)} />, root);
    type(root.querySelector('#token')!, 'wrong');
    await settle();
    await act(async () => {
      root.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    });
    await until(() => root.querySelector('[role=alert]'));
    expect(root.querySelector('[role=alert]')!.textContent).toBe('401 missing or wrong bearer token');
    expect(got).toEqual([]);
    expect((calls[0].init.headers as Record<string, string>).Authorization).toBe('Bearer wrong');
  });
});

describe('Fleet', () => {
  it('lists the VENs with their state and passes the filters to the API', async () => {
    setToken('tok');
    fakeApi((url) => {
      if (url.pathname === '/api/v1/vens')
        return {
          status: 200,
          body: {
            vens: [
              { venID: 'ven-1', venName: 'alpha', state: 'registered', provisioned: false, online: true, lastPoll: new Date().toISOString(), queued: 2 },
              { venID: 'ven-2', venName: 'beta', state: 'unregistered', provisioned: true },
            ],
            next_cursor: 'ven-2',
          },
        };
      if (url.pathname === '/api/v1/programs') return { status: 200, body: { programs: [], next_cursor: null } };
      return { status: 200, body: { groups: [], next_cursor: null } };
    });
    render(<App />, root);
    await until(() => root.querySelector('tr[data-ven]'));
    const rows = [...root.querySelectorAll('tr[data-ven]')];
    expect(rows.map((r) => r.getAttribute('data-ven'))).toEqual(['ven-1', 'ven-2']);
    expect(rows[0].textContent).toContain('online');
    expect(rows[1].textContent).toContain('provisioned');
    type(root.querySelector('input[type=search]')!, 'alp');
    const sel = root.querySelectorAll('select')[0] as HTMLSelectElement;
    sel.value = 'online';
    sel.dispatchEvent(new Event('change', { bubbles: true }));
    await settle();
    await act(async () => {
      root.querySelector('form.filters')!.dispatchEvent(new Event('submit', { cancelable: true }));
    });
    await until(() => calls.some((c) => c.url.searchParams.get('q') === 'alp'));
    const last = calls.filter((c) => c.url.pathname === '/api/v1/vens').pop()!;
    expect(last.url.searchParams.get('q')).toBe('alp');
    expect(last.url.searchParams.get('state')).toBe('online');
    expect((last.init.headers as Record<string, string>).Authorization).toBe('Bearer tok');
  });

  it('asks for the token again when the API answers 401', async () => {
    setToken('old');
    fakeApi(() => ({ status: 401, body: { error: 'missing or wrong bearer token' } }));
    render(<App />, root);
    await until(() => root.querySelector('#token'));
    expect(root.textContent).toContain('401 missing or wrong bearer token');
    expect(sessionStorage.getItem('openvtn.token')).toBeNull();
  });
});

describe('Event page', () => {
  it('shows participation counts, the bar and the table', async () => {
    setToken('tok');
    history.replaceState(null, '', '/ui/events/evt-1');
    fakeApi((url) => {
      if (url.pathname === '/api/v1/events/evt-1')
        return { status: 200, body: { eventID: 'evt-1', eventStatus: 'far', programID: 'prg-1', dtstart: '2026-12-03T14:00:00Z', duration: 'PT1H', modificationNumber: 0 } };
      if (url.pathname === '/api/v1/events/evt-1/vens')
        return {
          status: 200,
          body: {
            eventID: 'evt-1',
            modificationNumber: 0,
            counts: { received: 2, optIn: 1, optOut: 0, none: 1 },
            vens: [
              { venID: 'ven-1', opt: 'optIn', optSource: 'createdEvent', receivedModificationNumber: 0 },
              { venID: 'ven-2', opt: 'none', optSource: 'none', receivedModificationNumber: 0 },
            ],
          },
        };
      return { status: 200, body: { programs: [], next_cursor: null } };
    });
    render(<App />, root);
    await until(() => root.querySelector('tr[data-ven]'));
    expect(root.querySelector('[data-count=optIn]')!.textContent).toBe('Opted in: 1');
    expect(root.querySelector('[data-count=received]')!.textContent).toBe('Received: 2');
    expect((root.querySelector('.bar .in') as HTMLElement).style.width).toBe('50%');
    expect([...root.querySelectorAll('tr[data-ven]')].map((r) => r.textContent)).toEqual([
      expect.stringContaining('optIn'),
      expect.stringContaining('none'),
    ]);
  });

  it("exports the participation as the API's CSV", async () => {
    setToken('tok');
    history.replaceState(null, '', '/ui/events/evt-1');
    const csv = 'venID,modificationNumber,opt\nven-1,0,optIn\n';
    fakeApi((url) => {
      if (url.pathname === '/api/v1/events/evt-1/vens' && url.searchParams.get('format') === 'csv') return { status: 200, body: csv };
      if (url.pathname === '/api/v1/events/evt-1/vens')
        return { status: 200, body: { eventID: 'evt-1', modificationNumber: 0, counts: {}, vens: [{ venID: 'ven-1', opt: 'optIn' }] } };
      if (url.pathname === '/api/v1/events/evt-1') return { status: 200, body: { eventID: 'evt-1', eventStatus: 'far' } };
      return { status: 200, body: { programs: [], next_cursor: null } };
    });
    const blobs: Blob[] = [];
    vi.stubGlobal('URL', Object.assign(URL, { createObjectURL: (b: Blob) => (blobs.push(b), 'blob:x'), revokeObjectURL: () => {} }));
    const clicked: string[] = [];
    const click = HTMLAnchorElement.prototype.click;
    HTMLAnchorElement.prototype.click = function (this: HTMLAnchorElement) {
      clicked.push(this.download);
    };
    render(<App />, root);
    await until(() => root.querySelector('tr[data-ven]'));
    const btn = [...root.querySelectorAll('button')].find((x) => x.textContent === 'Export CSV')!;
    await act(async () => {
      btn.click();
    });
    await until(() => clicked.length);
    expect(clicked).toEqual(['evt-1-participation.csv']);
    const text = await new Promise((r) => {
      const f = new FileReader();
      f.onload = () => r(f.result);
      f.readAsText(blobs[0]);
    });
    HTMLAnchorElement.prototype.click = click;
    expect(text).toBe(csv);
    expect(blobs[0].type).toBe('text/csv');
  });

  it('shows an API error as the API said it', async () => {
    setToken('tok');
    history.replaceState(null, '', '/ui/events/nope');
    fakeApi(() => ({ status: 404, body: { error: 'no event nope' } }));
    render(<App />, root);
    await until(() => root.querySelector('[role=alert]'));
    expect([...root.querySelectorAll('[role=alert]')].map((e) => e.textContent)).toContain('404 no event nope');
  });
});

describe('eventBody', () => {
  it('is the EventRequest the form describes', () => {
    const b = eventBody({
      marketContext: 'http://mc',
      start: '2026-12-03T14:00',
      duration: 'PT1H',
      signalName: 'SIMPLE',
      signalType: 'level',
      intervals: [{ duration: 'PT1H', value: 2 }],
      groups: 'north, south',
      vens: '',
      priority: 1,
      comment: '',
    });
    expect(b).toEqual({
      marketContext: 'http://mc',
      dtstart: '2026-12-03T14:00:00Z',
      duration: 'PT1H',
      priority: 1,
      signals: [{ signalName: 'SIMPLE', signalType: 'level', intervals: [{ duration: 'PT1H', value: 2 }] }],
      targets: { groupID: ['north', 'south'] },
    });
  });
});
