import { getProject, getProjectConnections, rotateProjectCredentials, type ConnectionInfo } from '@capydb/sdk';
import { STACKS, dotenv, envVars } from '../env';
import { useMutation, useQuery } from '@tanstack/react-query';
import { Link, Outlet, useParams } from '@tanstack/react-router';
import { useEffect, useState } from 'react';
import { unwrap } from '../api';
import { Button, Confirm, CopyButton, ErrorText, SecretURL, Spinner, StateBadge, formatBytes, formatTime } from '../ui';
import { JobProgress } from './JobProgress';

export function useProject(projectId: string) {
  return useQuery({
    queryKey: ['project', projectId],
    queryFn: () => unwrap(getProject({ path: { projectID: projectId } })).then((b) => b.project),
    refetchInterval: (q) => (q.state.data && q.state.data.state !== 'ready' && q.state.data.state !== 'failed' ? 1500 : false),
  });
}

export function ProjectLayout() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const project = useProject(projectId);
  const tabs = [
    ['/projects/$projectId', 'Overview'],
    ['/projects/$projectId/sql', 'SQL'],
    ['/projects/$projectId/tables', 'Tables'],
    ['/projects/$projectId/schema', 'Schema'],
    ['/projects/$projectId/metrics', 'Metrics'],
    ['/projects/$projectId/logs', 'Logs'],
    ['/projects/$projectId/previews', 'Previews'],
    ['/projects/$projectId/backups', 'Backups'],
    ['/projects/$projectId/exports', 'Exports'],
    ['/projects/$projectId/imports', 'Import'],
    ['/projects/$projectId/database', 'Database'],
    ['/projects/$projectId/extensions', 'Extensions'],
    ['/projects/$projectId/jobs', 'Jobs'],
    ['/projects/$projectId/audit', 'Audit log'],
    ['/projects/$projectId/settings', 'Settings'],
  ] as const;
  return (
    <section aria-labelledby="project-title">
      <p className="crumbs">
        <Link to="/" search={{ q: '', page: 1 }}>
          Projects
        </Link>{' '}
        /
      </p>
      {project.isPending && <Spinner />}
      <ErrorText error={project.error} />
      {project.data && (
        <>
          <div className="row between">
            <h1 id="project-title">{project.data.name}</h1>
            <StateBadge state={project.data.state} />
          </div>
          <nav className="tabs" aria-label="Project">
            {tabs.map(([to, label]) => (
              <Link key={to} to={to} params={{ projectId }} activeOptions={{ exact: true }}>
                {label}
              </Link>
            ))}
          </nav>
        </>
      )}
      {/* The page starts its own requests alongside the project's (one round
          trip after the session, not two). */}
      {!project.error && <Outlet />}
    </section>
  );
}

export function ProjectOverview() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const project = useProject(projectId);
  const p = project.data;
  const ready = p?.state === 'ready';
  // Asked for in parallel with the project (no waterfall); asked again once
  // a provisioning project becomes ready.
  const conns = useQuery({
    queryKey: ['connections', projectId],
    queryFn: () => unwrap(getProjectConnections({ path: { projectID: projectId } })).then((b) => b.connections),
    retry: false,
  });
  const refetchConns = conns.refetch;
  const haveConns = !!conns.data;
  useEffect(() => {
    if (ready && !haveConns) void refetchConns();
  }, [ready, haveConns, refetchConns]);
  if (!p) return null;
  return (
    <div className="grid">
      <div className="card">
        <h2>Details</h2>
        <dl className="details">
          <dt>ID</dt>
          <dd>{p.id}</dd>
          <dt>Environment</dt>
          <dd>{p.environment === 'production' ? 'production' : 'non-production'}</dd>
          <dt>Region</dt>
          <dd>{p.region}</dd>
          <dt>PostgreSQL</dt>
          <dd>{p.postgres_version ?? '—'}</dd>
          <dt>Database</dt>
          <dd>{p.database_name}</dd>
          <dt>Role</dt>
          <dd>{p.role_name}</dd>
          <dt>Storage limit</dt>
          <dd>{formatBytes(p.storage_limit_bytes)}</dd>
          <dt>Created</dt>
          <dd>{formatTime(p.created_at)}</dd>
        </dl>
        {p.last_error && <p className="error">{p.last_error}</p>}
        {!ready && <JobProgress jobId={p.latest_job_id} invalidate={[['project', projectId]]} />}
      </div>
      <div className="card">
        <h2>Connect</h2>
        {!ready && <p className="muted">Connection strings appear once the project is ready.</p>}
        {ready && !conns.isFetching && <ErrorText error={conns.error} />}
        {ready && conns.data && (
          <>
            <SecretURL label="Pooled" url={conns.data.pooled_url} />
            <SecretURL label="Direct" url={conns.data.direct_url} />
            <SecretURL label="Session" url={conns.data.session_url} />
            <p className="small">
              The database ports use TLS with CapyDB's own CA:{' '}
              <a href="/v1/ca.pem" download="capydb-ca.pem">
                download the CA certificate
              </a>{' '}
              and connect with <code>sslmode=verify-full&amp;sslrootcert=capydb-ca.pem</code> (node-postgres requires it).
            </p>
            <EnvSnippets conns={conns.data} />
          </>
        )}
        {ready && <RotateCredentials projectId={projectId} />}
      </div>
    </div>
  );
}

// EnvSnippets: the variables `capydb env pull` writes, per stack.
function EnvSnippets({ conns }: { conns: ConnectionInfo }) {
  const [stack, setStack] = useState('prisma');
  const [shown, setShown] = useState(false);
  return (
    <div className="snippet">
      <label htmlFor="env-stack">.env for</label>{' '}
      <select id="env-stack" value={stack} onChange={(e) => setStack(e.target.value)}>
        {Object.entries(STACKS).map(([k, v]) => (
          <option key={k} value={k}>
            {v.label}
          </option>
        ))}
      </select>{' '}
      <Button onClick={() => setShown(!shown)} aria-pressed={shown}>
        {shown ? 'Hide' : 'Show'} snippet
      </Button>{' '}
      <CopyButton text={dotenv(envVars(stack, conns))} label="Copy .env" />
      {shown && <pre>{dotenv(envVars(stack, conns))}</pre>}
    </div>
  );
}

function RotateCredentials({ projectId }: { projectId: string }) {
  const [open, setOpen] = useState(false);
  const [jobId, setJobId] = useState<string>();
  const rotate = useMutation({
    mutationFn: () => unwrap(rotateProjectCredentials({ path: { projectID: projectId }, body: {} })),
    onSuccess: (r) => {
      setOpen(false);
      setJobId(r.job.id);
    },
  });
  return (
    <div className="rotate">
      <Button onClick={() => setOpen(true)}>Rotate credentials</Button>
      <ErrorText error={rotate.error} />
      <JobProgress jobId={jobId} invalidate={[['connections', projectId], ['project', projectId]]} />
      <Confirm
        open={open}
        title="Rotate credentials?"
        confirmLabel="Rotate"
        danger
        busy={rotate.isPending}
        onConfirm={() => rotate.mutate()}
        onClose={() => setOpen(false)}
      >
        <p>A new password is set for the project role. Connections using the old password are refused once the job completes.</p>
      </Confirm>
    </div>
  );
}
