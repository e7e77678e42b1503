import { getDatabaseSettings, getPoolerSettings, getReadOnly, openWriteWindow, setReadOnly, updateDatabaseSettings, updatePoolerSettings, type DatabaseSettings } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field, Spinner, StateBadge, TableWrap, formatTime } from '../ui';
import { LiveJobs } from './Jobs';
import { JobProgress } from './JobProgress';
import { NetworkSettings } from './NetworkSettings';

const JOB_TYPES = ['project.settings_update', 'project.pooler_update', 'instance.set_readonly', 'project.apply_network'];

// DatabaseSettingsPage: Postgres settings, pooler, read-only mode, SSL and
// network allow-lists. Every change is a job; the table at the bottom shows
// them live.
export function DatabaseSettingsPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  return (
    <div>
      <h2>Database settings</h2>
      <PgSettings projectId={projectId} />
      <div className="grid">
        <Pooler projectId={projectId} />
        <ReadOnly projectId={projectId} />
      </div>
      <NetworkSettings projectId={projectId} />
      <LiveJobs projectId={projectId} types={JOB_TYPES} label="Settings jobs" />
    </div>
  );
}

function PgSettings({ projectId }: { projectId: string }) {
  const key = ['database-settings', projectId];
  // The job outlives the form, which is rebuilt when the settings reload.
  const [jobId, setJobId] = useState<string>();
  const settings = useQuery({
    queryKey: key,
    queryFn: () => unwrap(getDatabaseSettings({ path: { projectID: projectId } })).then((b) => b.database_settings),
  });
  return (
    <section className="card" aria-labelledby="pg-title">
      <h3 id="pg-title">Postgres settings</h3>
      {settings.isPending && <Spinner />}
      <ErrorText error={settings.error} />
      {/* Keyed by the loaded values so the form starts from what the server has. */}
      {settings.data && <PgSettingsForm key={JSON.stringify(settings.data)} projectId={projectId} current={settings.data} onJob={setJobId} />}
      <JobProgress jobId={jobId} invalidate={[key, ['pooler', projectId]]} />
    </section>
  );
}

function PgSettingsForm({ projectId, current, onJob }: { projectId: string; current: DatabaseSettings; onJob: (id: string) => void }) {
  const qc = useQueryClient();
  const [values, setValues] = useState<Record<string, string>>({ ...current.settings });
  const [limit, setLimit] = useState(current.connection_limit);
  const save = useMutation({
    mutationFn: () => {
      const changed: Record<string, string> = {};
      const reset: string[] = [];
      for (const name of current.allowed_settings) {
        const v = (values[name] ?? '').trim();
        const was = current.settings[name] ?? '';
        if (v === was) continue;
        if (v === '') reset.push(name);
        else changed[name] = v;
      }
      return unwrap(
        updateDatabaseSettings({
          path: { projectID: projectId },
          body: {
            settings: Object.keys(changed).length ? changed : undefined,
            reset: reset.length ? reset : undefined,
            connection_limit: limit !== current.connection_limit ? limit : undefined,
          },
        }),
      );
    },
    onSuccess: (r) => {
      onJob(r.job.id);
      qc.invalidateQueries({ queryKey: ['jobs', projectId] });
    },
  });
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <p className="small muted">Defaults for the project's logins in its database (ALTER ROLE … IN DATABASE … SET). Empty means the server default.</p>
      <TableWrap label="Postgres settings">
        <table className="settings-table">
          <thead>
            <tr>
              <th scope="col">Setting</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {current.allowed_settings.map((name) => (
              <tr key={name}>
                <td>
                  <label htmlFor={`set-${name}`}>{name}</label>
                </td>
                <td>
                  <input id={`set-${name}`} value={values[name] ?? ''} placeholder="default" onChange={(e) => setValues({ ...values, [name]: e.target.value })} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <div className="row wrap">
        <Field label="Connection limit" hint={`7 to ${current.max_connection_limit}`}>
          {(id, hint) => (
            <input id={id} aria-describedby={hint} type="number" min={7} max={current.max_connection_limit} value={limit} onChange={(e) => setLimit(Number(e.target.value))} />
          )}
        </Field>
        <Button type="submit" kind="primary" busy={save.isPending}>
          Save settings
        </Button>
      </div>
      <ErrorText error={save.error} />
    </form>
  );
}

function Pooler({ projectId }: { projectId: string }) {
  const qc = useQueryClient();
  const key = ['pooler', projectId];
  const pooler = useQuery({
    queryKey: key,
    queryFn: () => unwrap(getPoolerSettings({ path: { projectID: projectId } })).then((b) => b.pooler_settings),
  });
  const [size, setSize] = useState<number>();
  const [mode, setMode] = useState<string>();
  const [jobId, setJobId] = useState<string>();
  const p = pooler.data;
  const save = useMutation({
    mutationFn: () => unwrap(updatePoolerSettings({ path: { projectID: projectId }, body: { pool_size: size ?? p?.pool_size, pool_mode: mode ?? p?.pool_mode } })),
    onSuccess: (r) => {
      setJobId(r.job.id);
      qc.invalidateQueries({ queryKey: ['jobs', projectId] });
    },
  });
  return (
    <section className="card" aria-labelledby="pooler-title">
      <h3 id="pooler-title">Connection pooler</h3>
      {pooler.isPending && <Spinner />}
      <ErrorText error={pooler.error} />
      {p && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate();
          }}
        >
          <Field label="Pool size" hint={`1 to ${p.max_db_connections}; default ${p.default_pool_size}`}>
            {(id, hint) => (
              <input id={id} aria-describedby={hint} type="number" min={1} max={p.max_db_connections} value={size ?? p.pool_size} onChange={(e) => setSize(Number(e.target.value))} />
            )}
          </Field>
          <Field label="Pool mode">
            {(id) => (
              <select id={id} value={mode ?? p.pool_mode} onChange={(e) => setMode(e.target.value)}>
                <option value="transaction">transaction</option>
                <option value="session">session</option>
              </select>
            )}
          </Field>
          <Button type="submit" kind="primary" busy={save.isPending}>
            Save pooler
          </Button>
          <ErrorText error={save.error} />
          <JobProgress jobId={jobId} invalidate={[key]} />
        </form>
      )}
    </section>
  );
}

function ReadOnly({ projectId }: { projectId: string }) {
  const qc = useQueryClient();
  const key = ['read-only', projectId];
  const ro = useQuery({ queryKey: key, queryFn: () => unwrap(getReadOnly({ path: { projectID: projectId } })).then((b) => b.read_only) });
  const [jobId, setJobId] = useState<string>();
  const done = (r: { job: { id: string } }) => {
    setJobId(r.job.id);
    qc.invalidateQueries({ queryKey: ['jobs', projectId] });
  };
  const toggle = useMutation({ mutationFn: (enabled: boolean) => unwrap(setReadOnly({ path: { projectID: projectId }, body: { enabled } })), onSuccess: done });
  const writeWindow = useMutation({ mutationFn: () => unwrap(openWriteWindow({ path: { projectID: projectId } })), onSuccess: done });
  const r = ro.data;
  return (
    <section className="card" aria-labelledby="ro-title">
      <h3 id="ro-title">Read-only mode</h3>
      {ro.isPending && <Spinner />}
      <ErrorText error={ro.error ?? toggle.error ?? writeWindow.error} />
      {r && (
        <>
          <p>
            Read-only: <StateBadge state={r.enabled ? 'on' : 'off'} />
            {r.override_active_until && <span className="small"> · writes allowed until {formatTime(r.override_active_until)}</span>}
          </p>
          <div className="row wrap">
            <Button kind={r.enabled ? 'primary' : 'danger'} busy={toggle.isPending} onClick={() => toggle.mutate(!r.enabled)}>
              {r.enabled ? 'Turn read-only off' : 'Turn read-only on'}
            </Button>
            {r.enabled && (
              <Button busy={writeWindow.isPending} onClick={() => writeWindow.mutate()}>
                Allow writes for 15 minutes
              </Button>
            )}
          </div>
        </>
      )}
      <JobProgress jobId={jobId} invalidate={[key]} />
    </section>
  );
}
