import { createBackup, listBackups } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field, Spinner, StateBadge, formatBytes, formatTime, TableWrap } from '../ui';
import { JobProgress } from './JobProgress';
import { RestoreButtons, ScheduleCard, usePreviewList } from './BackupActions';
import { RestorePoints, useRestorePoints } from './RestorePoints';

export function BackupsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const key = ['backups', projectId];
  const qc = useQueryClient();
  const backups = useQuery({
    queryKey: key,
    queryFn: () => unwrap(listBackups({ path: { projectID: projectId } })).then((b) => b.backups),
    refetchInterval: (q) => (q.state.data?.some((b) => b.state === 'running') ? 1500 : false),
  });
  // Started with the list, not after it: no request waits for another.
  usePreviewList(projectId);
  useRestorePoints(projectId);
  const [label, setLabel] = useState('');
  const [jobId, setJobId] = useState<string>();
  const create = useMutation({
    mutationFn: () => unwrap(createBackup({ path: { projectID: projectId }, body: label.trim() ? { label: label.trim() } : {} })),
    onSuccess: (r) => {
      setLabel('');
      setJobId(r.job.id);
      qc.invalidateQueries({ queryKey: key });
    },
  });
  return (
    <div>
      <h2>Backups</h2>
      <form
        className="card row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="Label (optional)">{(id) => <input id={id} value={label} onChange={(e) => setLabel(e.target.value)} />}</Field>
        <Button type="submit" kind="primary" busy={create.isPending}>
          Back up now
        </Button>
        <ErrorText error={create.error} />
      </form>
      <JobProgress jobId={jobId} invalidate={[key]} />
      <ScheduleCard projectId={projectId} />
      {backups.data && <RestorePoints projectId={projectId} backups={backups.data} />}
      {backups.isPending && <Spinner />}
      <ErrorText error={backups.error} />
      {backups.data && (
        <TableWrap label="Backups">
          <table>
            <thead>
              <tr>
                <th scope="col">Backup</th>
                <th scope="col">State</th>
                <th scope="col">Kind</th>
                <th scope="col">Size</th>
                <th scope="col">Verification</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {backups.data.map((b) => (
                <tr key={b.id}>
                  <td>
                    {b.label || b.id}
                    <div className="muted small">{b.backup_key}</div>
                  </td>
                  <td>
                    <StateBadge state={b.state} />
                  </td>
                  <td>{b.kind ?? '—'}</td>
                  <td>{formatBytes(b.size_bytes)}</td>
                  <td>
                    <StateBadge state={b.verification_state} />
                  </td>
                  <td>{formatTime(b.created_at)}</td>
                  <td>
                    <RestoreButtons projectId={projectId} backup={b} />
                  </td>
                </tr>
              ))}
              {backups.data.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted">
                    No backups yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </TableWrap>
      )}
    </div>
  );
}
