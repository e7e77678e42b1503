import { createExport, downloadExport, listExports } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Spinner, StateBadge, TableWrap, formatBytes, formatTime } from '../ui';
import { JobProgress } from './JobProgress';

export function ExportsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const key = ['exports', projectId];
  const qc = useQueryClient();
  const exports = useQuery({
    queryKey: key,
    queryFn: () => unwrap(listExports({ path: { projectID: projectId } })).then((b) => b.exports),
    refetchInterval: (q) => (q.state.data?.some((x) => x.state === 'running') ? 1500 : false),
  });
  const [jobId, setJobId] = useState<string>();
  const create = useMutation({
    mutationFn: () => unwrap(createExport({ path: { projectID: projectId }, body: {} })),
    onSuccess: (r) => {
      setJobId(r.job.id);
      qc.invalidateQueries({ queryKey: key });
    },
  });
  const download = useMutation({
    mutationFn: (exportID: string) => unwrap(downloadExport({ path: { projectID: projectId, exportID } })),
    // A signed, 15-minute URL on this server: navigate to it to download.
    onSuccess: (r) => window.location.assign(r.download.download_url),
  });
  return (
    <div>
      <h2>Exports</h2>
      <div className="card row wrap">
        <p className="full">A logical dump (pg_dump custom format) of the project's database, downloadable for a while.</p>
        <Button kind="primary" onClick={() => create.mutate()} busy={create.isPending}>
          Export now
        </Button>
        <ErrorText error={create.error ?? download.error} />
      </div>
      <JobProgress jobId={jobId} invalidate={[key]} />
      {exports.isPending && <Spinner />}
      <ErrorText error={exports.error} />
      {exports.data && (
        <TableWrap label="Exports">
          <table>
            <thead>
              <tr>
                <th scope="col">Export</th>
                <th scope="col">State</th>
                <th scope="col">Size</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {exports.data.map((x) => (
                <tr key={x.id}>
                  <td>{x.id}</td>
                  <td>
                    <StateBadge state={x.state} />
                  </td>
                  <td>{formatBytes(x.size_bytes)}</td>
                  <td>{formatTime(x.expires_at)}</td>
                  <td>
                    {x.state === 'completed' && (
                      <Button onClick={() => download.mutate(x.id)}>
                        Download <span className="sr-only">{x.id}</span>
                      </Button>
                    )}
                  </td>
                </tr>
              ))}
              {exports.data.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    No exports yet.
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
