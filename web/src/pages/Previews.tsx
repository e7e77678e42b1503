import {
  createPreviewDatabase,
  deletePreviewDatabase,
  extendPreviewDatabase,
  getPreviewDatabaseConnections,
  listPreviewDatabases,
  resetPreviewDatabase,
  type PreviewDatabase,
} from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, Confirm, ErrorText, Field, SecretURL, Spinner, StateBadge, formatTime } from '../ui';
import { JobProgress } from './JobProgress';

export function PreviewsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const key = ['previews', projectId];
  const qc = useQueryClient();
  const previews = useQuery({
    queryKey: key,
    queryFn: () => unwrap(listPreviewDatabases({ path: { projectID: projectId } })).then((b) => b.preview_databases),
    refetchInterval: (q) => (q.state.data?.some((p) => p.state !== 'ready' && p.state !== 'failed') ? 1500 : false),
  });
  const [name, setName] = useState('');
  const [mode, setMode] = useState<'clone' | 'empty'>('clone');
  const [ttl, setTtl] = useState(24);
  const [jobId, setJobId] = useState<string>();
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        createPreviewDatabase({ path: { projectID: projectId }, body: { mode, ttl_hours: ttl, ...(name.trim() ? { name: name.trim() } : {}) } }),
      ),
    onSuccess: (r) => {
      setName('');
      setJobId(r.job.id);
      qc.invalidateQueries({ queryKey: key });
    },
  });
  return (
    <div>
      <h2>Previews</h2>
      <form
        className="card row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="Name (optional)">{(id) => <input id={id} value={name} onChange={(e) => setName(e.target.value)} />}</Field>
        <Field label="Contents">
          {(id) => (
            <select id={id} value={mode} onChange={(e) => setMode(e.target.value as 'clone' | 'empty')}>
              <option value="clone">Clone of the project</option>
              <option value="empty">Empty database</option>
            </select>
          )}
        </Field>
        <Field label="Time to live (hours)">
          {(id) => <input id={id} type="number" min={1} max={720} value={ttl} onChange={(e) => setTtl(Number(e.target.value))} />}
        </Field>
        <Button type="submit" kind="primary" busy={create.isPending}>
          Create preview
        </Button>
        <ErrorText error={create.error} />
      </form>
      <JobProgress jobId={jobId} invalidate={[key]} />
      {previews.isPending && <Spinner />}
      <ErrorText error={previews.error} />
      {previews.data?.length === 0 && <p className="muted">No previews.</p>}
      <ul className="cards">
        {previews.data?.map((p) => (
          <PreviewCard key={p.id} preview={p} listKey={key} />
        ))}
      </ul>
    </div>
  );
}

function PreviewCard({ preview: p, listKey }: { preview: PreviewDatabase; listKey: string[] }) {
  const qc = useQueryClient();
  const [confirm, setConfirm] = useState<'reset' | 'delete' | null>(null);
  const [jobId, setJobId] = useState<string>();
  const conns = useQuery({
    queryKey: ['preview-connections', p.id],
    queryFn: () => unwrap(getPreviewDatabaseConnections({ path: { previewID: p.id } })).then((b) => b.connections),
    enabled: p.state === 'ready',
  });
  const done = (r: { job: { id: string } }) => {
    setConfirm(null);
    setJobId(r.job.id);
    qc.invalidateQueries({ queryKey: listKey });
  };
  const extend = useMutation({
    mutationFn: () => unwrap(extendPreviewDatabase({ path: { previewID: p.id }, body: { ttl_hours: 24 } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: listKey }),
  });
  const reset = useMutation({ mutationFn: () => unwrap(resetPreviewDatabase({ path: { previewID: p.id }, body: {} })), onSuccess: done });
  const del = useMutation({ mutationFn: () => unwrap(deletePreviewDatabase({ path: { previewID: p.id } })), onSuccess: done });
  return (
    <li className="card">
      <div className="row between">
        <h3>{p.name}</h3>
        <StateBadge state={p.state} />
      </div>
      <p className="muted small">
        {p.id} · {p.mode} · expires {formatTime(p.ttl_expires_at)}
      </p>
      {conns.data && <SecretURL label="Pooled" url={conns.data.pooled_url} />}
      <div className="row">
        <Button onClick={() => extend.mutate()} busy={extend.isPending}>
          Extend 24 h <span className="sr-only">{p.name}</span>
        </Button>
        <Button onClick={() => setConfirm('reset')}>
          Reset <span className="sr-only">{p.name}</span>
        </Button>
        <Button kind="danger" onClick={() => setConfirm('delete')}>
          Delete <span className="sr-only">{p.name}</span>
        </Button>
      </div>
      <ErrorText error={extend.error ?? reset.error ?? del.error} />
      <JobProgress jobId={jobId} invalidate={[listKey]} />
      <Confirm
        open={confirm !== null}
        title={confirm === 'delete' ? `Delete preview ${p.name}?` : `Reset preview ${p.name}?`}
        confirmLabel={confirm === 'delete' ? 'Delete' : 'Reset'}
        danger
        busy={reset.isPending || del.isPending}
        onConfirm={() => (confirm === 'delete' ? del.mutate() : reset.mutate())}
        onClose={() => setConfirm(null)}
      >
        <p>{confirm === 'delete' ? 'The preview database and its data are removed.' : 'The preview is rebuilt from its source; its changes are lost.'}</p>
      </Confirm>
    </li>
  );
}
