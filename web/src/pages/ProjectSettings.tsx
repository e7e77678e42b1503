import { createProjectApproval, deleteProject } from '@capydb/sdk';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, Confirm, ErrorText, Field } from '../ui';
import { JobProgress } from './JobProgress';
import { useProject } from './Project';

// Deletion: type the name to confirm; a production project first gets a
// single-use project.delete approval (minted here by an organization admin).
export function ProjectSettingsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const project = useProject(projectId);
  const qc = useQueryClient();
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [jobId, setJobId] = useState<string>();
  const p = project.data;
  const del = useMutation({
    mutationFn: async () => {
      let approval: string | undefined;
      if (p?.environment === 'production') {
        const a = await unwrap(createProjectApproval({ path: { projectID: projectId }, body: { action: 'project.delete' } }));
        approval = a.approval.token;
      }
      return unwrap(deleteProject({ path: { projectID: projectId }, query: approval ? { approval_token: approval } : {} }));
    },
    onSuccess: (r) => {
      setOpen(false);
      setJobId(r.job.id);
      qc.invalidateQueries({ queryKey: ['projects'] });
    },
  });
  if (!p) return null;
  return (
    <div>
      <h2>Settings</h2>
      <div className="card danger-zone">
        <h3>Delete project</h3>
        <p>Deletes the database, its previews, backups and exports. This cannot be undone.</p>
        {p.environment === 'production' && <p className="muted">Production project: deleting mints a single-use approval first.</p>}
        <Button kind="danger" onClick={() => setOpen(true)} disabled={p.state === 'deleting'}>
          Delete project
        </Button>
        <ErrorText error={del.error} />
        <JobProgress jobId={jobId} invalidate={[['projects']]} />
      </div>
      <Confirm
        open={open}
        title={`Delete ${p.name}?`}
        confirmLabel="Delete project"
        danger
        busy={del.isPending}
        onConfirm={() => typed === p.name && del.mutate()}
        onClose={() => setOpen(false)}
      >
        <Field label={`Type the project name (${p.name}) to confirm`}>
          {(id) => <input id={id} autoComplete="off" value={typed} onChange={(e) => setTyped(e.target.value)} />}
        </Field>
      </Confirm>
    </div>
  );
}
