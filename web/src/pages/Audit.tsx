import { listProjectAuditEvents } from '@capydb/sdk';
import { useQuery } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { unwrap } from '../api';
import { ErrorText, Spinner, TableWrap, formatTime } from '../ui';

export function AuditPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const events = useQuery({
    queryKey: ['audit', projectId],
    queryFn: () => unwrap(listProjectAuditEvents({ path: { projectID: projectId }, query: { limit: 100 } })).then((b) => b.audit_events),
  });
  return (
    <div>
      <h2>Audit log</h2>
      {events.isPending && <Spinner />}
      <ErrorText error={events.error} />
      {events.data && (
        <TableWrap label="Audit events">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {events.data.map((e) => (
                <tr key={e.id}>
                  <td>{formatTime(e.created_at)}</td>
                  <td>{e.action}</td>
                  <td>
                    {e.actor_kind}
                    {e.actor_id && <div className="muted small">{e.actor_id}</div>}
                  </td>
                  <td>
                    <code className="small">{JSON.stringify(e.metadata)}</code>
                  </td>
                </tr>
              ))}
              {events.data.length === 0 && (
                <tr>
                  <td colSpan={4} className="muted">
                    No events.
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
