import { client } from '@capydb/sdk';

// The SDK talks to the same origin; the HttpOnly session cookie authenticates
// and the CSRF token (held in memory only, never in storage) goes with every
// mutation. No API key is ever kept by the browser.

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Session = {
  organization_id: string;
  project_id: string | null;
  scopes: string[];
  csrf_token: string;
  expires_at: string;
};

let csrf = '';
export function setCSRF(token: string) {
  csrf = token;
}

client.setConfig({ baseUrl: '', credentials: 'same-origin' });
client.interceptors.request.use((req) => {
  if (req.method !== 'GET' && req.method !== 'HEAD' && csrf) req.headers.set('X-CSRF-Token', csrf);
  return req;
});

type Result<T> = { data?: T; error?: unknown; response?: Response };

// unwrap turns the SDK's {data, error} into a value or an ApiError carrying
// the server's {"error": "..."} message.
export async function unwrap<T>(p: Promise<Result<T>>): Promise<T> {
  const r = await p;
  if (r.error !== undefined || !r.response?.ok) {
    const e = r.error as { error?: string } | undefined;
    throw new ApiError(r.response?.status ?? 0, e?.error ?? `request failed (${r.response?.status ?? 'network'})`);
  }
  return r.data as T;
}

async function sessionCall(method: string, body?: unknown): Promise<Session | null> {
  const res = await fetch('/dashboard/session', {
    method,
    credentials: 'same-origin',
    headers: {
      ...(body ? { 'Content-Type': 'application/json' } : {}),
      ...(method === 'DELETE' && csrf ? { 'X-CSRF-Token': csrf } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 204) return null;
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, json.error ?? `sign-in failed (${res.status})`);
  setCSRF(json.csrf_token);
  return json as Session;
}

export const getSession = () => sessionCall('GET');
export const signIn = (apiKey: string) => sessionCall('POST', { api_key: apiKey });
export async function signOut() {
  await sessionCall('DELETE');
  setCSRF('');
}
