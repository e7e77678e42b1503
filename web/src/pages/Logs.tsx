import { getProjectLogs, searchProjectLogs, type ProjectLogEntry } from '@capydb/sdk';
import { useQuery } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field, Spinner, TableWrap, formatTime } from '../ui';

const SEVERITIES = ['', 'error,fatal,panic', 'warning,error,fatal,panic', 'log', 'notice', 'info'];
const sevLabel = (s: string) => (s === '' ? 'all' : s === 'error,fatal,panic' ? 'errors' : s === 'warning,error,fatal,panic' ? 'warnings and errors' : s);

// LogsPage: the tail of the project's Postgres log (refreshed every 2 s
// while following) and a search over the archive (substring, SQLSTATE,
// severity, time window). Log lines are text: a statement's markup is never
// interpreted.
export function LogsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const [severity, setSeverity] = useState('');
  const [follow, setFollow] = useState(true);
  const tail = useQuery({
    queryKey: ['logs', projectId, severity],
    queryFn: () =>
      unwrap(getProjectLogs({ path: { projectID: projectId }, query: { hours: 24, limit: 200, severity: severity || undefined } })).then(
        (b) => b.logs.entries,
      ),
    refetchInterval: follow ? 2000 : false,
  });
  return (
    <div>
      <h2>Logs</h2>
      <Search projectId={projectId} />
      <section aria-labelledby="tail-title">
        <div className="row wrap between">
          <h3 id="tail-title">Latest lines (24 hours)</h3>
          <div className="row wrap">
            <Field label="Severity">
              {(id) => (
                <select id={id} value={severity} onChange={(e) => setSeverity(e.target.value)}>
                  {SEVERITIES.map((s) => (
                    <option key={s} value={s}>
                      {sevLabel(s)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <label className="check">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
              Follow
            </label>
          </div>
        </div>
        {tail.isPending && <Spinner />}
        <ErrorText error={tail.error} />
        {tail.data && <LogTable label="Log tail" entries={tail.data} newestFirst={false} />}
      </section>
    </div>
  );
}

type SearchParams = { q: string; sqlstate: string; severity: string; hours: number };

function Search({ projectId }: { projectId: string }) {
  const [form, setForm] = useState<SearchParams>({ q: '', sqlstate: '', severity: '', hours: 24 });
  const [params, setParams] = useState<SearchParams>();
  const search = useQuery({
    queryKey: ['log-search', projectId, params],
    enabled: !!params,
    queryFn: () => {
      const p = params!;
      return unwrap(
        searchProjectLogs({
          path: { projectID: projectId },
          query: {
            q: p.q || undefined,
            sqlstate: p.sqlstate || undefined,
            severity: p.severity || undefined,
            since: new Date(Date.now() - p.hours * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
            limit: 200,
          },
        }),
      ).then((b) => b.search);
    },
  });
  const set = (k: keyof SearchParams) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
    setForm({ ...form, [k]: k === 'hours' ? Number(e.target.value) : e.target.value });
  return (
    <section className="card" aria-labelledby="search-title">
      <h3 id="search-title">Search</h3>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          setParams({ ...form });
        }}
      >
        <Field label="Text">{(id) => <input id={id} value={form.q} onChange={set('q')} placeholder="does not exist" />}</Field>
        <Field label="SQLSTATE">{(id) => <input id={id} value={form.sqlstate} onChange={set('sqlstate')} placeholder="42P01 or 42" size={10} />}</Field>
        <Field label="Search severity">
          {(id) => (
            <select id={id} value={form.severity} onChange={set('severity')}>
              {SEVERITIES.map((s) => (
                <option key={s} value={s}>
                  {sevLabel(s)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Since">
          {(id) => (
            <select id={id} value={form.hours} onChange={set('hours')}>
              <option value={1}>1 hour</option>
              <option value={24}>24 hours</option>
              <option value={168}>7 days</option>
            </select>
          )}
        </Field>
        <Button type="submit" kind="primary" busy={search.isFetching}>
          Search logs
        </Button>
      </form>
      <ErrorText error={search.error} />
      {search.data && (
        <>
          <p className="small muted" role="status">
            {search.data.entries.length} matching line{search.data.entries.length === 1 ? '' : 's'}, newest first
            {search.data.truncated ? ' (more exist: narrow the search)' : ''}
          </p>
          <LogTable label="Search results" entries={search.data.entries} newestFirst />
        </>
      )}
    </section>
  );
}

function LogTable({ label, entries }: { label: string; entries: ProjectLogEntry[]; newestFirst: boolean }) {
  return (
    <TableWrap label={label}>
      <table>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Severity</th>
            <th scope="col">SQLSTATE</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.cursor}>
              <td className="small">{formatTime(e.timestamp)}</td>
              <td>
                <span className={`badge badge-${e.severity === 'error' || e.severity === 'fatal' || e.severity === 'panic' ? 'bad' : e.severity === 'warning' ? 'warn' : 'muted'}`}>
                  {e.severity}
                </span>
              </td>
              <td>{e.sqlstate ?? ''}</td>
              <td className="logline">{e.message}</td>
            </tr>
          ))}
          {entries.length === 0 && (
            <tr>
              <td colSpan={4} className="muted">
                No lines.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </TableWrap>
  );
}
