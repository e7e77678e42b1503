import { getJob, type Job } from '@capydb/sdk';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from '@tanstack/react-router';
import { useEffect } from 'react';
import { unwrap } from '../api';
import { ErrorText, StateBadge } from '../ui';

export const isLive = (j?: Job) => !!j && (j.state === 'pending' || j.state === 'running');

// useJob polls a job once a second until it settles, then refreshes what it
// changed (the keys in invalidate).
export function useJob(jobId: string | undefined, invalidate: unknown[][] = []) {
  const qc = useQueryClient();
  const q = useQuery({
    queryKey: ['job', jobId],
    queryFn: () => unwrap(getJob({ path: { jobID: jobId! } })).then((b) => b.job),
    enabled: !!jobId,
    refetchInterval: (query) => (isLive(query.state.data) ? 1000 : false),
  });
  const settled = q.data && !isLive(q.data);
  useEffect(() => {
    if (settled) for (const key of invalidate) qc.invalidateQueries({ queryKey: key });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [settled]);
  return q;
}

export function JobProgress({ jobId, invalidate }: { jobId?: string; invalidate?: unknown[][] }) {
  const job = useJob(jobId, invalidate);
  if (!jobId) return null;
  const j = job.data;
  return (
    <div className="job" role="status" aria-live="polite">
      <span>
        Job <Link to="/jobs/$jobId" params={{ jobId }}>{jobId}</Link>
        {j && <> ({j.type})</>}:{' '}
      </span>
      {j ? <StateBadge state={j.state} /> : '…'}
      {j?.progress && (
        <span className="muted">
          {' '}
          {j.progress.phase}
          {j.progress.percent !== undefined && ` ${Math.round(j.progress.percent)}%`}
        </span>
      )}
      {j?.progress?.percent !== undefined && <progress max={100} value={j.progress.percent} aria-label="Job progress" />}
      {j?.error && <p className="error">{j.error}</p>}
      <ErrorText error={job.error} />
    </div>
  );
}
