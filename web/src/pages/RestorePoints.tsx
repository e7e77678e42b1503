import { createRestorePoint, deleteRestorePoint, listRestorePoints, type Backup } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field, StateBadge, formatTime } from '../ui';

export function useRestorePoints(projectId: string) {
  return useQuery({ queryKey: ['restore-points', projectId], queryFn: () => unwrap(listRestorePoints({ path: { projectID: projectId } })) });
}

// Restore points: named pointers at a backup, kept while the backup is.
export function RestorePoints({ projectId, backups }: { projectId: string; backups: Backup[] }) {
  const qc = useQueryClient();
  const key = ['restore-points', projectId];
  const points = useRestorePoints(projectId);
  const usable = backups.filter((b) => b.state === 'completed');
  const [label, setLabel] = useState('');
  const [backupKey, setBackupKey] = useState('');
  const create = useMutation({
    mutationFn: () =>
      unwrap(createRestorePoint({ path: { projectID: projectId }, body: { label: label.trim(), backup_key: backupKey || usable[0]?.backup_key } })),
    onSuccess: () => {
      setLabel('');
      qc.invalidateQueries({ queryKey: key });
    },
  });
  const del = useMutation({
    mutationFn: (id: string) => unwrap(deleteRestorePoint({ path: { projectID: projectId, restorePointID: id } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: key }),
  });
  return (
    <div className="card">
      <h3>Restore points</h3>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="Restore point label">{(id) => <input id={id} required value={label} onChange={(e) => setLabel(e.target.value)} />}</Field>
        <Field label="From backup">
          {(id) => (
            <select id={id} value={backupKey} onChange={(e) => setBackupKey(e.target.value)}>
              {usable.map((b) => (
                <option key={b.id} value={b.backup_key}>
                  {b.label || b.id} ({formatTime(b.created_at)})
                </option>
              ))}
            </select>
          )}
        </Field>
        <Button type="submit" busy={create.isPending} disabled={!usable.length}>
          Add restore point
        </Button>
      </form>
      <ErrorText error={create.error ?? del.error ?? points.error} />
      <ul className="plain">
        {points.data?.restore_points.map((rp) => (
          <li key={rp.id} className="row wrap">
            <strong>{rp.label}</strong> <StateBadge state={rp.state} />
            <span className="muted small">
              {rp.kind} · {formatTime(rp.created_at)}
            </span>
            <Button onClick={() => del.mutate(rp.id)}>
              Delete <span className="sr-only">restore point {rp.label}</span>
            </Button>
          </li>
        ))}
      </ul>
      {points.data?.restore_points.length === 0 && <p className="muted">No restore points.</p>}
    </div>
  );
}
