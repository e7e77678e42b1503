import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, Outlet } from '@tanstack/react-router';
import { useState } from 'react';
import { ApiError, getSession, signIn, signOut } from '../api';
import { SessionContext } from '../session';
import { Button, ErrorText, Field, Spinner } from '../ui';

// Shell gates every page on a dashboard session: without one it shows the
// sign-in form, with one the navigation and the page.
export function Shell() {
  const qc = useQueryClient();
  const session = useQuery({
    queryKey: ['session'],
    queryFn: async () => {
      try {
        return await getSession();
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    staleTime: Infinity,
  });
  const out = useMutation({
    mutationFn: signOut,
    onSuccess: () => {
      qc.clear();
      qc.setQueryData(['session'], null);
    },
  });
  if (session.isPending) {
    return (
      <main className="center">
        <Spinner />
      </main>
    );
  }
  if (session.isError) {
    return (
      <main className="center">
        <ErrorText error={session.error} />
      </main>
    );
  }
  if (!session.data) return <SignIn />;
  return (
    <SessionContext.Provider value={session.data}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" search={{ q: '', page: 1 }} className="brand">
          CapyDB
        </Link>
        <nav aria-label="Organization">
          <Link to="/" search={{ q: '', page: 1 }} activeOptions={{ exact: true, includeSearch: false }}>
            Projects
          </Link>
          <Link to="/api-keys">API keys</Link>
          <Link to="/webhooks">Webhooks</Link>
          <Link to="/organization">Organization</Link>
        </nav>
        <Button onClick={() => out.mutate()} busy={out.isPending}>
          Sign out
        </Button>
      </header>
      <main id="main">
        <Outlet />
      </main>
    </SessionContext.Provider>
  );
}

function SignIn() {
  const qc = useQueryClient();
  const config = useQuery({
    queryKey: ['dashboard-config'],
    queryFn: () => fetch('/dashboard/config').then((r) => r.json() as Promise<{ oidc: boolean }>),
    staleTime: Infinity,
  });
  const [key, setKey] = useState('');
  const m = useMutation({
    mutationFn: () => signIn(key.trim()),
    onSuccess: (s) => {
      setKey('');
      qc.setQueryData(['session'], s);
    },
  });
  return (
    <main className="center" id="main">
      <form
        className="card signin"
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <h1>Sign in to CapyDB</h1>
        <p className="muted">
          Paste an API key once. The server exchanges it for a session cookie; the key is not stored in this browser.
        </p>
        <Field label="API key" hint="The bootstrap admin key is in <data-dir>/bootstrap-admin-key.">
          {(id, hint) => (
            <input
              id={id}
              aria-describedby={hint}
              type="password"
              autoComplete="off"
              required
              placeholder="capy_live_…"
              value={key}
              onChange={(e) => setKey(e.target.value)}
            />
          )}
        </Field>
        <ErrorText error={m.error} />
        <Button type="submit" kind="primary" busy={m.isPending}>
          Sign in
        </Button>
        {config.data?.oidc && (
          <p>
            or{' '}
            <a className="btn btn-secondary" href="/dashboard/oidc/login">
              Sign in with single sign-on
            </a>
          </p>
        )}
      </form>
    </main>
  );
}
