import {
  createWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  redeliverWebhookDelivery,
  rotateWebhookEndpointSecret,
  testWebhookEndpoint,
  updateWebhookEndpoint,
  type WebhookEndpoint,
} from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { unwrap } from '../api';
import { useSession } from '../session';
import { Button, CopyButton, ErrorText, Field, Spinner, StateBadge, TableWrap, formatTime } from '../ui';

type EventType = WebhookEndpoint['event_types'][number];
const EVENTS: EventType[] = [
  'project.ready',
  'project.deleted',
  'job.completed',
  'job.failed',
  'backup.completed',
  'preview.ready',
  'preview.deleted',
  'import.completed',
  'restore.completed',
  'credentials.rotated',
  'alert.triggered',
  'alert.resolved',
];

function SecretOnce({ secret }: { secret?: string }) {
  if (!secret) return null;
  return (
    <div className="once" role="status">
      <p>
        <strong>Copy the signing secret now: it is shown only once.</strong>
      </p>
      <code aria-label="Signing secret">{secret}</code> <CopyButton text={secret} label="Copy secret" />
    </div>
  );
}

export function WebhooksPage() {
  const { organization_id: orgID } = useSession();
  const qc = useQueryClient();
  const key = ['webhooks', orgID];
  const endpoints = useQuery({
    queryKey: key,
    queryFn: () => unwrap(listWebhookEndpoints({ path: { orgID } })).then((b) => b.webhook_endpoints),
  });
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<EventType[]>([]);
  const [secret, setSecret] = useState<string>();
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        createWebhookEndpoint({
          path: { orgID },
          body: { url: url.trim(), ...(description.trim() ? { description: description.trim() } : {}), ...(events.length ? { event_types: events } : {}) },
        }),
      ),
    onSuccess: (r) => {
      setSecret(r.plaintext_secret);
      setUrl('');
      setDescription('');
      qc.invalidateQueries({ queryKey: key });
    },
  });
  return (
    <section aria-labelledby="hooks-title">
      <h1 id="hooks-title">Webhooks</h1>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          setSecret(undefined);
          create.mutate();
        }}
      >
        <h2>Add an endpoint</h2>
        <Field label="URL">{(id) => <input id={id} type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://…" />}</Field>
        <Field label="Description (optional)">{(id) => <input id={id} value={description} onChange={(e) => setDescription(e.target.value)} />}</Field>
        <fieldset>
          <legend>Events (none checked: all)</legend>
          <div className="scopes">
            {EVENTS.map((ev) => (
              <label key={ev} className="check">
                <input
                  type="checkbox"
                  checked={events.includes(ev)}
                  onChange={(e) => setEvents(e.target.checked ? [...events, ev] : events.filter((x) => x !== ev))}
                />
                {ev}
              </label>
            ))}
          </div>
        </fieldset>
        <ErrorText error={create.error} />
        <Button type="submit" kind="primary" busy={create.isPending}>
          Add endpoint
        </Button>
        <SecretOnce secret={secret} />
      </form>
      {endpoints.isPending && <Spinner />}
      <ErrorText error={endpoints.error} />
      {endpoints.data?.length === 0 && <p className="muted">No webhook endpoints.</p>}
      <ul className="cards">
        {endpoints.data?.map((ep) => (
          <EndpointCard key={ep.id} ep={ep} orgID={orgID} listKey={key} />
        ))}
      </ul>
    </section>
  );
}

function EndpointCard({ ep, orgID, listKey }: { ep: WebhookEndpoint; orgID: string; listKey: string[] }) {
  const qc = useQueryClient();
  const path = { orgID, endpointID: ep.id };
  const dkey = ['deliveries', ep.id];
  const [secret, setSecret] = useState<string>();
  const deliveries = useQuery({
    queryKey: dkey,
    queryFn: () => unwrap(listWebhookDeliveries({ path, query: { limit: 20 } })).then((b) => b.deliveries),
    refetchInterval: (q) => (q.state.data?.some((d) => d.state === 'pending') ? 2000 : false),
  });
  const toggle = useMutation({
    mutationFn: () => unwrap(updateWebhookEndpoint({ path, body: { is_active: !ep.is_active } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: listKey }),
  });
  const rotate = useMutation({
    mutationFn: () => unwrap(rotateWebhookEndpointSecret({ path, body: {} })),
    onSuccess: (r) => setSecret(r.plaintext_secret),
  });
  const test = useMutation({
    mutationFn: () => unwrap(testWebhookEndpoint({ path, body: {} })),
    onSuccess: () => qc.invalidateQueries({ queryKey: dkey }),
  });
  const redeliver = useMutation({
    mutationFn: (deliveryID: string) => unwrap(redeliverWebhookDelivery({ path: { ...path, deliveryID }, body: {} })),
    onSuccess: () => qc.invalidateQueries({ queryKey: dkey }),
  });
  return (
    <li className="card">
      <div className="row between">
        <h2 className="url">{ep.url}</h2>
        <StateBadge state={ep.is_active ? ep.health : 'disabled'} />
      </div>
      {ep.description && <p>{ep.description}</p>}
      <p className="muted small">
        {ep.id} · {ep.event_types.length ? ep.event_types.join(', ') : 'all events'}
      </p>
      <div className="row wrap">
        <Button onClick={() => test.mutate()} busy={test.isPending}>
          Send test event
        </Button>
        <Button onClick={() => toggle.mutate()} busy={toggle.isPending}>
          {ep.is_active ? 'Disable' : 'Enable'}
        </Button>
        <Button onClick={() => rotate.mutate()} busy={rotate.isPending}>
          Rotate secret
        </Button>
      </div>
      <ErrorText error={test.error ?? toggle.error ?? rotate.error ?? redeliver.error ?? deliveries.error} />
      <SecretOnce secret={secret} />
      <h3>Deliveries</h3>
      {deliveries.data?.length === 0 && <p className="muted">No deliveries yet.</p>}
      {!!deliveries.data?.length && (
        <TableWrap label={`Deliveries to ${ep.url}`}>
          <table>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">State</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {deliveries.data.map((d) => (
                <tr key={d.id}>
                  <td>{d.event_type}</td>
                  <td>
                    <StateBadge state={d.state} />
                    {d.last_error && <div className="small error">{d.last_error}</div>}
                  </td>
                  <td>{d.response_status ?? '—'}</td>
                  <td>
                    {d.attempts}/{d.max_attempts}
                  </td>
                  <td>{formatTime(d.created_at)}</td>
                  <td>
                    <Button onClick={() => redeliver.mutate(d.id)} disabled={d.state === 'pending'}>
                      Redeliver <span className="sr-only">{d.id}</span>
                    </Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </li>
  );
}
