import { createImport, createImportUpload, preflightImport } from '@capydb/sdk';
import { useMutation } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { ApiError, unwrap } from '../api';
import { Button, Confirm, ErrorText, Field, StateBadge, TableWrap, formatBytes } from '../ui';
import { JobProgress } from './JobProgress';

// Import from a URL: the preflight's findings first, then a confirmed import
// into the project's live database.
export function ImportsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const [source, setSource] = useState('');
  const [confirm, setConfirm] = useState(false);
  const [jobId, setJobId] = useState<string>();
  const preflight = useMutation({
    mutationFn: () => unwrap(preflightImport({ path: { projectID: projectId }, body: { source_url: source.trim() } })).then((b) => b.preflight),
  });
  const start = useMutation({
    mutationFn: () => unwrap(createImport({ path: { projectID: projectId }, body: { confirm: true, source_url: source.trim() } })),
    onSuccess: (r) => {
      setConfirm(false);
      setJobId(r.job.id);
    },
  });
  const [file, setFile] = useState<File | null>(null);
  const [confirmUpload, setConfirmUpload] = useState(false);
  // Upload: a signed PUT URL on this server, then the import of that object.
  const upload = useMutation({
    mutationFn: async () => {
      if (!file) throw new Error('choose a dump file first');
      const u = await unwrap(createImportUpload({ path: { projectID: projectId }, body: {} }));
      const put = await fetch(u.upload.upload_url, { method: 'PUT', body: file, headers: { 'Content-Type': 'application/octet-stream' } });
      if (!put.ok) {
        const e = await put.json().catch(() => ({}));
        throw new ApiError(put.status, e.error ?? `upload failed (${put.status})`);
      }
      return unwrap(createImport({ path: { projectID: projectId }, body: { confirm: true, upload_key: u.upload.object_key } }));
    },
    onSuccess: (r) => {
      setConfirmUpload(false);
      setJobId(r.job.id);
    },
  });
  const p = preflight.data;
  return (
    <div>
      <h2>Import</h2>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          preflight.mutate();
        }}
      >
        <Field label="Source database URL" hint="postgres://user:password@host:5432/db — used for this import only, never shown again.">
          {(id, hint) => (
            <input id={id} aria-describedby={hint} type="password" autoComplete="off" required value={source} onChange={(e) => setSource(e.target.value)} />
          )}
        </Field>
        <div className="row">
          <Button type="submit" busy={preflight.isPending}>
            Check source
          </Button>
          <Button kind="danger" disabled={!p?.ok} onClick={() => setConfirm(true)}>
            Import
          </Button>
        </div>
        <ErrorText error={preflight.error ?? start.error} />
      </form>
      {p && (
        <div className="card" aria-live="polite">
          <h3>Preflight: {p.ok ? 'ready to import' : 'not importable'}</h3>
          <p className="muted small">
            Source PostgreSQL {p.source.server_version}, {formatBytes(p.source.database_size_bytes)}
            {p.source.provider && <>, {p.source.provider}</>}; target {p.target_version}, limit {formatBytes(p.storage_limit_bytes)}
          </p>
          <TableWrap label="Preflight checks">
            <table>
              <thead>
                <tr>
                  <th scope="col">Check</th>
                  <th scope="col">Result</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                {p.checks.map((c) => (
                  <tr key={c.name}>
                    <td>{c.name}</td>
                    <td>
                      <StateBadge state={c.status} />
                    </td>
                    <td>{c.detail ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </div>
      )}
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          setConfirmUpload(true);
        }}
      >
        <Field label="Dump file" hint="A pg_dump custom-format archive (pg_dump -Fc), e.g. an export of another project.">
          {(id, hint) => <input id={id} aria-describedby={hint} type="file" required onChange={(e) => setFile(e.target.files?.[0] ?? null)} />}
        </Field>
        <Button type="submit" kind="danger" disabled={!file}>
          Upload and import
        </Button>
        <ErrorText error={upload.error} />
      </form>
      <JobProgress jobId={jobId} invalidate={[['project', projectId]]} />
      <Confirm
        open={confirmUpload}
        title="Import the uploaded dump?"
        confirmLabel="Upload and import"
        danger
        busy={upload.isPending}
        onConfirm={() => upload.mutate()}
        onClose={() => setConfirmUpload(false)}
      >
        <p>{file ? `${file.name} is` : 'The file is'} uploaded and restored into the project's live database.</p>
      </Confirm>
      <Confirm
        open={confirm}
        title="Import into the project?"
        confirmLabel="Import"
        danger
        busy={start.isPending}
        onConfirm={() => start.mutate()}
        onClose={() => setConfirm(false)}
      >
        <p>The source's data is written into the project's live database.</p>
      </Confirm>
    </div>
  );
}
