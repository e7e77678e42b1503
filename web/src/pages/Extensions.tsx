import { disableProjectExtension, enableProjectExtension, listProjectExtensions, updateProjectExtension } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Spinner, StateBadge, TableWrap } from '../ui';
import { LiveJobs } from './Jobs';
import { JobProgress } from './JobProgress';

// ExtensionsPage lists the allowlisted extensions the cluster provides and
// enables, updates or disables them (each a job, shown live).
export function ExtensionsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const qc = useQueryClient();
  const key = ['extensions', projectId];
  const exts = useQuery({ queryKey: key, queryFn: () => unwrap(listProjectExtensions({ path: { projectID: projectId } })).then((b) => b.extensions) });
  const [jobId, setJobId] = useState<string>();
  const act = useMutation({
    mutationFn: ({ name, op }: { name: string; op: 'enable' | 'disable' | 'update' }) => {
      const path = { projectID: projectId, name };
      if (op === 'enable') return unwrap(enableProjectExtension({ path: { projectID: projectId }, body: { name } }));
      if (op === 'disable') return unwrap(disableProjectExtension({ path }));
      return unwrap(updateProjectExtension({ path }));
    },
    onSuccess: (r) => {
      setJobId(r.job.id);
      qc.invalidateQueries({ queryKey: ['jobs', projectId] });
    },
  });
  return (
    <div>
      <h2>Extensions</h2>
      <ErrorText error={exts.error ?? act.error} />
      <JobProgress jobId={jobId} invalidate={[key]} />
      {exts.isPending && <Spinner />}
      {exts.data && (
        <TableWrap label="Extensions">
          <table>
            <thead>
              <tr>
                <th scope="col">Extension</th>
                <th scope="col">State</th>
                <th scope="col">Version</th>
                <th scope="col">Description</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {exts.data.map((x) => (
                <tr key={x.name}>
                  <td>
                    {x.name}
                    {!x.trusted && <span className="small muted"> (untrusted)</span>}
                  </td>
                  <td>
                    <StateBadge state={x.enabled ? 'enabled' : 'available'} />
                  </td>
                  <td>{x.installed_version ?? x.default_version ?? '—'}</td>
                  <td className="small">{x.description}</td>
                  <td>
                    <div className="row">
                      {x.enabled ? (
                        <Button busy={act.isPending} onClick={() => act.mutate({ name: x.name, op: 'disable' })}>
                          Disable <span className="sr-only">{x.name}</span>
                        </Button>
                      ) : (
                        <Button busy={act.isPending} onClick={() => act.mutate({ name: x.name, op: 'enable' })}>
                          Enable <span className="sr-only">{x.name}</span>
                        </Button>
                      )}
                      {x.enabled && x.update_available && (
                        <Button busy={act.isPending} onClick={() => act.mutate({ name: x.name, op: 'update' })}>
                          Update <span className="sr-only">{x.name}</span>
                        </Button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      <LiveJobs projectId={projectId} types={['project.extension_*']} label="Extension jobs" />
    </div>
  );
}
