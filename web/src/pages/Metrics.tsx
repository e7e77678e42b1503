import { acknowledgeProjectAlert, getProjectObservability, getProjectObservabilityHistory, listProjectAlerts, type ObservabilitySample } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { Suspense, lazy, useEffect, useMemo, useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field, Spinner, StateBadge, TableWrap, formatBytes, formatTime } from '../ui';
import type { Series } from './Chart';

// The chart chunk is fetched as the page mounts, in parallel with the data.
const loadChart = () => import('./Chart');
const Chart = lazy(loadChart);

// MetricsPage: live gauges and active queries, charts of the sampler's
// history, the slowest statements (pg_stat_statements) and usage alerts with
// acknowledge. Live data refreshes every 5 s, history every 10 s.
export function MetricsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const [hours, setHours] = useState(1);
  useEffect(() => {
    void loadChart();
  }, []);
  const live = useQuery({
    queryKey: ['observability', projectId],
    queryFn: () => unwrap(getProjectObservability({ path: { projectID: projectId } })).then((b) => b.observability),
    refetchInterval: 5000,
  });
  const history = useQuery({
    queryKey: ['observability-history', projectId, hours],
    queryFn: () => unwrap(getProjectObservabilityHistory({ path: { projectID: projectId }, query: { hours } })).then((b) => b.samples),
    refetchInterval: 10_000,
  });
  const o = live.data;
  return (
    <div>
      <h2>Metrics</h2>
      <ErrorText error={live.error} />
      {o && (
        <div className="card gauges" role="group" aria-label="Now">
          <div className="gauge">
            <span className="muted">Connections</span>
            <strong>
              {o.connection_count} / {o.connection_limit}
            </strong>
            <span className="small">{Math.round(o.connection_usage_percent)}%</span>
          </div>
          <div className="gauge">
            <span className="muted">Storage</span>
            <strong>{formatBytes(o.database_size_bytes)}</strong>
            <span className="small">
              {Math.round(o.storage_usage_percent)}% of {formatBytes(o.storage_limit_bytes)}
            </span>
          </div>
          <div className="gauge">
            <span className="muted">Active queries</span>
            <strong>{o.active_queries.length}</strong>
          </div>
          {o.alerts.length > 0 && (
            <p className="full">
              {o.alerts.map((a) => (
                <StateBadge key={a} state={a} />
              ))}
            </p>
          )}
        </div>
      )}
      <div className="row wrap">
        <Field label="History window">
          {(id) => (
            <select id={id} value={hours} onChange={(e) => setHours(Number(e.target.value))}>
              <option value={1}>1 hour</option>
              <option value={24}>24 hours</option>
              <option value={168}>7 days</option>
              <option value={720}>30 days</option>
            </select>
          )}
        </Field>
        <span className="small muted" role="status">
          {history.data ? `${history.data.length} samples` : ''}
        </span>
      </div>
      <ErrorText error={history.error} />
      {history.isPending && <Spinner />}
      {history.data && <Charts samples={history.data} />}
      <Alerts projectId={projectId} />
      {o && (
        <section aria-labelledby="slow-title">
          <h3 id="slow-title">Slow queries</h3>
          {!o.pg_stat_statements ? (
            <p className="muted">pg_stat_statements is not enabled in this project's database, so statement timings are not recorded.</p>
          ) : (
            <TableWrap label="Slow queries">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Query</th>
                    <th scope="col">Calls</th>
                    <th scope="col">Mean ms</th>
                    <th scope="col">Total ms</th>
                    <th scope="col">Rows</th>
                  </tr>
                </thead>
                <tbody>
                  {o.slow_queries.map((q, i) => (
                    <tr key={q.query_id ?? i}>
                      <td>
                        <code>{q.query}</code>
                      </td>
                      <td>{q.calls}</td>
                      <td>{q.mean_time_ms.toFixed(2)}</td>
                      <td>{q.total_time_ms.toFixed(1)}</td>
                      <td>{q.rows}</td>
                    </tr>
                  ))}
                  {o.slow_queries.length === 0 && (
                    <tr>
                      <td colSpan={5} className="muted">
                        No statements recorded yet.
                      </td>
                    </tr>
                  )}
                </tbody>
              </table>
            </TableWrap>
          )}
          <h3>Active queries</h3>
          <TableWrap label="Active queries">
            <table>
              <thead>
                <tr>
                  <th scope="col">PID</th>
                  <th scope="col">User</th>
                  <th scope="col">State</th>
                  <th scope="col">Running</th>
                  <th scope="col">Query</th>
                </tr>
              </thead>
              <tbody>
                {o.active_queries.map((q) => (
                  <tr key={q.pid}>
                    <td>{q.pid}</td>
                    <td>{q.username}</td>
                    <td>
                      {q.state}
                      {q.wait_event ? ` (${q.wait_event_type}: ${q.wait_event})` : ''}
                    </td>
                    <td>{q.duration_ms} ms</td>
                    <td>
                      <code>{q.query}</code>
                    </td>
                  </tr>
                ))}
                {o.active_queries.length === 0 && (
                  <tr>
                    <td colSpan={5} className="muted">
                      Nothing running.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </TableWrap>
        </section>
      )}
    </div>
  );
}

const pct = (v: number) => `${Math.round(v * 100)}%`;

function Charts({ samples }: { samples: ObservabilitySample[] }) {
  const charts = useMemo(() => {
    const times = samples.map((s) => Date.parse(s.sampled_at) / 1000);
    const col = (f: (s: ObservabilitySample) => number) => samples.map(f);
    const c: { title: string; series: Series[] }[] = [
      {
        title: 'Connections',
        series: [
          { label: 'connections', values: col((s) => s.connections), color: '#1f5fbf' },
          { label: 'active', values: col((s) => s.active_queries), color: '#1d6b36' },
          { label: 'blocked', values: col((s) => s.blocked_queries), color: '#b3261e' },
        ],
      },
      { title: 'Database size', series: [{ label: 'size', values: col((s) => s.database_size_bytes), color: '#6b3f1d', format: (v) => formatBytes(v) }] },
      {
        title: 'Cache hit and rollback ratio',
        series: [
          { label: 'cache hit', values: col((s) => s.cache_hit_ratio), color: '#1d6b36', format: pct },
          { label: 'rollback', values: col((s) => s.rollback_ratio), color: '#b3261e', format: pct },
        ],
      },
      { title: 'Average query time (ms)', series: [{ label: 'avg ms', values: col((s) => s.avg_query_ms), color: '#8a5a00' }] },
      {
        title: 'Dead tuples and deadlocks',
        series: [
          { label: 'dead tuples', values: col((s) => s.dead_tuples), color: '#5a6272' },
          { label: 'deadlocks', values: col((s) => s.deadlocks), color: '#b3261e' },
        ],
      },
    ];
    return { times, c };
  }, [samples]);
  if (samples.length === 0) return <p className="muted">No samples in this window yet; the sampler records one per interval.</p>;
  return (
    <Suspense fallback={<Spinner label="Loading charts…" />}>
      <div className="charts">
        {charts.c.map((ch) => (
          <Chart key={ch.title} title={ch.title} times={charts.times} series={ch.series} />
        ))}
      </div>
    </Suspense>
  );
}

function Alerts({ projectId }: { projectId: string }) {
  const qc = useQueryClient();
  const key = ['alerts', projectId];
  const alerts = useQuery({
    queryKey: key,
    queryFn: () => unwrap(listProjectAlerts({ path: { projectID: projectId } })).then((b) => b.alerts),
    refetchInterval: 5000,
  });
  const ack = useMutation({
    mutationFn: (id: string) => unwrap(acknowledgeProjectAlert({ path: { projectID: projectId, alertID: id } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: key }),
  });
  return (
    <section aria-labelledby="alerts-title">
      <h3 id="alerts-title">Alerts</h3>
      <ErrorText error={alerts.error ?? ack.error} />
      {alerts.data && (
        <TableWrap label="Alerts">
          <table>
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">Severity</th>
                <th scope="col">Observed / limit</th>
                <th scope="col">Triggered</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {alerts.data.map((a) => (
                <tr key={a.id}>
                  <td>{a.kind}</td>
                  <td>
                    <span className={`badge badge-${a.severity === 'critical' ? 'bad' : 'warn'}`}>{a.severity}</span>
                  </td>
                  <td>
                    {a.kind === 'storage' ? `${formatBytes(a.observed_value)} / ${formatBytes(a.limit_value)}` : `${a.observed_value} / ${a.limit_value}`}
                  </td>
                  <td>{formatTime(a.triggered_at)}</td>
                  <td>
                    {a.resolved_at ? (
                      `resolved ${formatTime(a.resolved_at)}`
                    ) : a.acknowledged_at ? (
                      `acknowledged ${formatTime(a.acknowledged_at)}`
                    ) : (
                      <Button busy={ack.isPending} onClick={() => ack.mutate(a.id)}>
                        Acknowledge <span className="sr-only">{a.kind} alert</span>
                      </Button>
                    )}
                  </td>
                </tr>
              ))}
              {alerts.data.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    No alerts.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}
