import { listProjectJobs, type Job } from '@capydb/sdk';
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from '@tanstack/react-router';
import { unwrap } from '../api';
import { ErrorText, Spinner, StateBadge, formatTime, TableWrap } from '../ui';
import { isLive, useJob } from './JobProgress';

export function ProjectJobsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const jobs = useQuery({
    queryKey: ['jobs', projectId],
    queryFn: () => unwrap(listProjectJobs({ path: { projectID: projectId }, query: { limit: 50 } })).then((b) => b.jobs),
    refetchInterval: (q) => (q.state.data?.some(isLive) ? 1500 : false),
  });
  return (
    <div>
      <h2>Jobs</h2>
      {jobs.isPending && <Spinner />}
      <ErrorText error={jobs.error} />
      {jobs.data && <JobsTable jobs={jobs.data} />}
    </div>
  );
}

// LiveJobs is the project's jobs table filtered to some types, polled every
// second while one of them is pending or running (the settings pages show the
// jobs their changes queued here).
export function LiveJobs({ projectId, types, label }: { projectId: string; types: string[]; label: string }) {
  const jobs = useQuery({
    queryKey: ['jobs', projectId],
    queryFn: () => unwrap(listProjectJobs({ path: { projectID: projectId }, query: { limit: 50 } })).then((b) => b.jobs),
    refetchInterval: (q) => (q.state.data?.some(isLive) ? 1000 : false),
  });
  const mine = jobs.data?.filter((j) => types.some((t) => j.type === t || (t.endsWith('*') && j.type.startsWith(t.slice(0, -1)))));
  return (
    <section aria-label={label}>
      <h3>{label}</h3>
      <ErrorText error={jobs.error} />
      {mine && <JobsTable jobs={mine.slice(0, 10)} label={label} />}
    </section>
  );
}

function JobsTable({ jobs, label = 'Jobs' }: { jobs: Job[]; label?: string }) {
  return (
    <TableWrap label={label}>
      <table>
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Type</th>
            <th scope="col">State</th>
            <th scope="col">Attempts</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id}>
              <td>
                <Link to="/jobs/$jobId" params={{ jobId: j.id }}>
                  {j.id}
                </Link>
              </td>
              <td>{j.type}</td>
              <td>
                <StateBadge state={j.state} />
              </td>
              <td>
                {j.attempts}/{j.max_attempts}
              </td>
              <td>{formatTime(j.created_at)}</td>
            </tr>
          ))}
          {jobs.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No jobs.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </TableWrap>
  );
}

export function JobPage() {
  const { jobId } = useParams({ from: '/jobs/$jobId' });
  const job = useJob(jobId);
  const j = job.data;
  return (
    <section aria-labelledby="job-title">
      <h1 id="job-title">Job {jobId}</h1>
      {job.isPending && <Spinner />}
      <ErrorText error={job.error} />
      {j && (
        <div className="card">
          <dl className="details">
            <dt>Type</dt>
            <dd>{j.type}</dd>
            <dt>State</dt>
            <dd>
              <StateBadge state={j.state} />
            </dd>
            <dt>Progress</dt>
            <dd>{j.progress ? `${j.progress.phase}${j.progress.percent !== undefined ? ` ${Math.round(j.progress.percent)}%` : ''}` : '—'}</dd>
            <dt>Attempts</dt>
            <dd>
              {j.attempts}/{j.max_attempts}
            </dd>
            <dt>Project</dt>
            <dd>
              {j.project_id ? (
                <Link to="/projects/$projectId" params={{ projectId: j.project_id }}>
                  {j.project_id}
                </Link>
              ) : (
                '—'
              )}
            </dd>
            <dt>Created</dt>
            <dd>{formatTime(j.created_at)}</dd>
            <dt>Completed</dt>
            <dd>{formatTime(j.completed_at)}</dd>
          </dl>
          {j.error && <p className="error">{j.error}</p>}
          <h2>Output</h2>
          <h3>stdout (tail)</h3>
          <pre className="log">{j.last_stdout || '—'}</pre>
          <h3>stderr (tail)</h3>
          <pre className="log">{j.last_stderr || '—'}</pre>
        </div>
      )}
    </section>
  );
}
