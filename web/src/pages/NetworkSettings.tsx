import { getNetworkRestrictions, getSslEnforcement, putNetworkRestrictions, putSslEnforcement, type NetworkRestrictions } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field, Spinner, StateBadge, formatTime } from '../ui';
import { JobProgress } from './JobProgress';

const lines = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

// NetworkSettings: the database allow-lists (IPv4 and IPv6 CIDRs; empty
// lists allow every address) and SSL enforcement.
export function NetworkSettings({ projectId }: { projectId: string }) {
  const net = useQuery({
    queryKey: ['network', projectId],
    queryFn: () => unwrap(getNetworkRestrictions({ path: { projectID: projectId } })).then((b) => b.network_restrictions),
    refetchInterval: (q) => (q.state.data?.status === 'stored' ? 1500 : false),
  });
  return (
    <div className="grid">
      <section className="card" aria-labelledby="net-title">
        <h3 id="net-title">Network allow-lists</h3>
        {net.isPending && <Spinner />}
        <ErrorText error={net.error} />
        {net.data && <AllowListForm key={JSON.stringify([net.data.db_allowed_cidrs, net.data.db_allowed_cidrs_v6])} projectId={projectId} current={net.data} />}
      </section>
      <Ssl projectId={projectId} />
    </div>
  );
}

function AllowListForm({ projectId, current }: { projectId: string; current: NetworkRestrictions }) {
  const qc = useQueryClient();
  const [v4, setV4] = useState(current.db_allowed_cidrs.join('\n'));
  const [v6, setV6] = useState(current.db_allowed_cidrs_v6.join('\n'));
  const [jobId, setJobId] = useState<string>();
  const save = useMutation({
    mutationFn: () => unwrap(putNetworkRestrictions({ path: { projectID: projectId }, body: { db_allowed_cidrs: lines(v4), db_allowed_cidrs_v6: lines(v6) } })),
    onSuccess: (r) => {
      setJobId(r.job.id);
      qc.setQueryData(['network', projectId], r.network_restrictions);
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
      <p>
        <StateBadge state={current.status} /> <span className="small muted">{current.applied_at ? `applied ${formatTime(current.applied_at)}` : ''}</span>
      </p>
      <Field label="Allowed IPv4 ranges" hint="One CIDR per line, e.g. 203.0.113.0/24. Empty: every address may connect.">
        {(id, hint) => <textarea id={id} aria-describedby={hint} value={v4} onChange={(e) => setV4(e.target.value)} rows={3} />}
      </Field>
      <Field label="Allowed IPv6 ranges" hint="One CIDR per line, e.g. 2001:db8::/32.">
        {(id, hint) => <textarea id={id} aria-describedby={hint} value={v6} onChange={(e) => setV6(e.target.value)} rows={3} />}
      </Field>
      <Button type="submit" kind="primary" busy={save.isPending}>
        Save allow-lists
      </Button>
      <ErrorText error={save.error} />
      <JobProgress jobId={jobId} invalidate={[['network', projectId]]} />
    </form>
  );
}

function Ssl({ projectId }: { projectId: string }) {
  const qc = useQueryClient();
  const key = ['ssl', projectId];
  const ssl = useQuery({ queryKey: key, queryFn: () => unwrap(getSslEnforcement({ path: { projectID: projectId } })).then((b) => b.ssl_enforcement) });
  const put = useMutation({
    mutationFn: (database: boolean) => unwrap(putSslEnforcement({ path: { projectID: projectId }, body: { database } })),
    onSuccess: (r) => {
      qc.setQueryData(key, r.ssl_enforcement);
      qc.invalidateQueries({ queryKey: ['jobs', projectId] });
    },
  });
  const s = ssl.data;
  return (
    <section className="card" aria-labelledby="ssl-title">
      <h3 id="ssl-title">SSL enforcement</h3>
      {ssl.isPending && <Spinner />}
      <ErrorText error={ssl.error} />
      {s && (
        <>
          <p>
            Clients must use TLS: <StateBadge state={s.database ? 'on' : 'off'} />{' '}
            {!s.applied_successfully && <span className="small muted">(being applied)</span>}
          </p>
          <Button kind={s.database ? 'danger' : 'primary'} busy={put.isPending} onClick={() => put.mutate(!s.database)}>
            {s.database ? 'Allow connections without TLS' : 'Require TLS'}
          </Button>
          <p className="hint">Allowing plaintext needs the server's --allow-plaintext; otherwise the server refuses.</p>
        </>
      )}
      <ErrorText error={put.error} />
    </section>
  );
}
