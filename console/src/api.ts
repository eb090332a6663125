// The console's only way to the VTN: /api/v1 on the origin it was served
// from, with the bearer token the operator typed. The token lives in
// sessionStorage (gone when the tab closes; never a cookie), so the static
// files need no credentials and every data request carries it.
const TOKEN_KEY = 'openvtn.token';
export const API = '/api/v1';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(t: string): void {
  sessionStorage.setItem(TOKEN_KEY, t);
}
export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

// An answer other than 2xx, with the API's own words: its {"error": ...}
// body when there is one, else the body's text, else the status line.
export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

// Called with every 401 so the app can ask for the token again.
let onUnauthorized: (e: ApiError) => void = () => {};
export function setUnauthorizedHandler(f: (e: ApiError) => void): void {
  onUnauthorized = f;
}

export async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let msg = '';
  try {
    const j = JSON.parse(text);
    if (j && typeof j.error === 'string') msg = j.error;
  } catch {
    msg = text.trim();
  }
  return new ApiError(res.status, `${res.status} ${msg || res.statusText || 'error'}`);
}

export type Query = Record<string, string | number | boolean | undefined | null | string[]>;

export function qs(q?: Query): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else p.append(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

export async function raw(method: string, path: string, body?: unknown, token = getToken()): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  return fetch(API + path, { method, headers, body: payload, credentials: 'omit', cache: 'no-store' });
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await raw(method, path, body);
  if (!res.ok) {
    const e = await errorFrom(res);
    if (res.status === 401) onUnauthorized(e);
    throw e;
  }
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export const get = <T = any>(path: string, q?: Query) => api<T>('GET', path + qs(q));

// The text of a non-JSON answer (CSV export).
export async function getText(path: string, q?: Query): Promise<string> {
  const res = await raw('GET', path + qs(q));
  if (!res.ok) throw await errorFrom(res);
  return res.text();
}

// Checks a token before keeping it: a cheap authenticated read.
export async function checkToken(token: string): Promise<ApiError | null> {
  const res = await raw('GET', '/vens' + qs({ limit: 1 }), undefined, token);
  return res.ok ? null : errorFrom(res);
}

export const enc = encodeURIComponent;
