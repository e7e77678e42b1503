import { createProjectApproval, createRestore, listPreviewDatabases, listScheduledBackups, upsertScheduledBackup, type Backup } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { unwrap } from '../api';
import { Button, Confirm, ErrorText, Field } from '../ui';
import { JobProgress } from './JobProgress';
import { useProject } from './Project';

export function usePreviewList(projectId: string) {
  return useQuery({
    queryKey: ['previews', projectId],
    queryFn: () => unwrap(listPreviewDatabases({ path: { projectID: projectId } })).then((b) => b.preview_databases),
  });
}

// RestoreButtons restore a completed backup into a new preview, or over the
// project itself (non-production only) after minting its
// project.restore_overwrite approval.
export function RestoreButtons({ projectId, backup }: { projectId: string; backup: Backup }) {
  const project = useProject(projectId);
  const [confirm, setConfirm] = useState(false);
  const [jobId, setJobId] = useState<string>();
  const toPreview = useMutation({
    mutationFn: () =>
      unwrap(createRestore({ path: { projectID: projectId }, body: { backup_key: backup.backup_key, target_kind: 'new_preview', ttl_hours: 24 } })),
    onSuccess: (r) => setJobId(r.job.id),
  });
  const previews = usePreviewList(projectId);
  const ready = previews.data?.filter((p) => p.state === 'ready') ?? [];
  const [previewId, setPreviewId] = useState('');
  const toExisting = useMutation({
    mutationFn: () =>
      unwrap(
        createRestore({
          path: { projectID: projectId },
          body: { backup_key: backup.backup_key, target_kind: 'preview', preview_id: previewId || ready[0]?.id },
        }),
      ),
    onSuccess: (r) => setJobId(r.job.id),
  });
  const toProject = useMutation({
    mutationFn: async () => {
      const a = await unwrap(createProjectApproval({ path: { projectID: projectId }, body: { action: 'project.restore_overwrite' } }));
      return unwrap(
        createRestore({ path: { projectID: projectId }, body: { backup_key: backup.backup_key, target_kind: 'project', approval_token: a.approval.token } }),
      );
    },
    onSuccess: (r) => {
      setConfirm(false);
      setJobId(r.job.id);
    },
  });
  if (backup.state !== 'completed') return null;
  const label = backup.label || backup.id;
  return (
    <div className="row wrap">
      <Button onClick={() => toPreview.mutate()} busy={toPreview.isPending}>
        Restore to new preview <span className="sr-only">from {label}</span>
      </Button>
      {ready.length > 0 && (
        <div className="row">
          <label className="sr-only" htmlFor={`into-${backup.id}`}>
            Preview to restore {label} into
          </label>
          <select id={`into-${backup.id}`} value={previewId} onChange={(e) => setPreviewId(e.target.value)}>
            {ready.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
          <Button onClick={() => toExisting.mutate()} busy={toExisting.isPending}>
            Restore into preview <span className="sr-only">from {label}</span>
          </Button>
        </div>
      )}
      {project.data?.environment === 'non_production' && (
        <Button kind="danger" onClick={() => setConfirm(true)}>
          Restore into project <span className="sr-only">from {label}</span>
        </Button>
      )}
      <ErrorText error={toPreview.error ?? toExisting.error ?? toProject.error} />
      <JobProgress jobId={jobId} invalidate={[['previews', projectId], ['project', projectId]]} />
      <Confirm
        open={confirm}
        title="Restore over the project?"
        confirmLabel="Restore"
        danger
        busy={toProject.isPending}
        onConfirm={() => toProject.mutate()}
        onClose={() => setConfirm(false)}
      >
        <p>The project's database is replaced by this backup (a pre-restore backup is taken first).</p>
      </Confirm>
    </div>
  );
}

export function ScheduleCard({ projectId }: { projectId: string }) {
  const qc = useQueryClient();
  const key = ['schedules', projectId];
  const schedules = useQuery({
    queryKey: key,
    queryFn: () => unwrap(listScheduledBackups({ path: { projectID: projectId } })).then((b) => b.scheduled_backups),
  });
  const current = schedules.data?.[0];
  const [hour, setHour] = useState(3);
  const [minute, setMinute] = useState(0);
  const [active, setActive] = useState(true);
  const [retention, setRetention] = useState(7);
  useEffect(() => {
    if (current) {
      setHour(current.cron_hour);
      setMinute(current.cron_minute);
      setActive(current.is_active);
      setRetention(current.retention_days);
    }
  }, [current]);
  const save = useMutation({
    mutationFn: () =>
      unwrap(upsertScheduledBackup({ path: { projectID: projectId }, body: { cron_hour: hour, cron_minute: minute, is_active: active, retention_days: retention } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: key }),
  });
  return (
    <form
      className="card row wrap"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <h3 className="full">Daily schedule (UTC)</h3>
      <Field label="Hour">{(id) => <input id={id} type="number" min={0} max={23} value={hour} onChange={(e) => setHour(Number(e.target.value))} />}</Field>
      <Field label="Minute">{(id) => <input id={id} type="number" min={0} max={59} value={minute} onChange={(e) => setMinute(Number(e.target.value))} />}</Field>
      <Field label="Keep (days)">
        {(id) => <input id={id} type="number" min={1} max={3650} value={retention} onChange={(e) => setRetention(Number(e.target.value))} />}
      </Field>
      <label className="check">
        <input type="checkbox" checked={active} onChange={(e) => setActive(e.target.checked)} /> Active
      </label>
      <Button type="submit" busy={save.isPending}>
        Save schedule
      </Button>
      {save.isSuccess && !save.isPending && <span role="status">Saved.</span>}
      <ErrorText error={save.error ?? schedules.error} />
    </form>
  );
}
