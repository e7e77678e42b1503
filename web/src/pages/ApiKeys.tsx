import { createApiKey, listApiKeys, revokeApiKey, type ApiKey, type CreateApiKeyBody } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { unwrap } from '../api';
import { useSession } from '../session';
import { Button, Confirm, CopyButton, ErrorText, Field, Spinner, formatTime, TableWrap } from '../ui';
import { useProjects } from './Projects';

type Scope = NonNullable<CreateApiKeyBody['scopes']>[number];
export const SCOPES: Scope[] = [
  'projects:read',
  'projects:write',
  'credentials:read',
  'backups:read',
  'backups:write',
  'jobs:read',
  'organizations:read',
  'organizations:write',
  'api_keys:read',
  'api_keys:write',
  'schema:read',
];

export function ApiKeysPage() {
  const { organization_id: orgID } = useSession();
  const qc = useQueryClient();
  const key = ['api-keys', orgID];
  const keys = useQuery({ queryKey: key, queryFn: () => unwrap(listApiKeys({ path: { orgID } })).then((b) => b.api_keys) });
  const projects = useProjects();
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>(['projects:read']);
  const [projectId, setProjectId] = useState('');
  const [expires, setExpires] = useState('');
  const [plaintext, setPlaintext] = useState<string>();
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        createApiKey({
          path: { orgID },
          body: {
            name: name.trim(),
            scopes,
            ...(projectId ? { project_id: projectId } : {}),
            ...(expires ? { expires_at: new Date(expires).toISOString() } : {}),
          },
        }),
      ),
    onSuccess: (r) => {
      setPlaintext(r.plaintext_api_key);
      setName('');
      qc.invalidateQueries({ queryKey: key });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(revokeApiKey({ path: { orgID, keyID: id } })),
    onSuccess: () => {
      setRevoking(null);
      qc.invalidateQueries({ queryKey: key });
    },
  });
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          setPlaintext(undefined);
          create.mutate();
        }}
      >
        <h2>Create a key</h2>
        <Field label="Name">{(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
        <fieldset>
          <legend>Scopes</legend>
          <div className="scopes">
            {SCOPES.map((s) => (
              <label key={s} className="check">
                <input
                  type="checkbox"
                  checked={scopes.includes(s)}
                  onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
                />
                {s}
              </label>
            ))}
          </div>
        </fieldset>
        <Field label="Limit to project">
          {(id) => (
            <select id={id} value={projectId} onChange={(e) => setProjectId(e.target.value)}>
              <option value="">Whole organization</option>
              {projects.data?.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Expires (optional)">{(id) => <input id={id} type="date" value={expires} onChange={(e) => setExpires(e.target.value)} />}</Field>
        <ErrorText error={create.error} />
        <Button type="submit" kind="primary" busy={create.isPending}>
          Create key
        </Button>
        {plaintext && (
          <div className="once" role="status">
            <p>
              <strong>Copy this key now: it is shown only once.</strong>
            </p>
            <code aria-label="New API key">{plaintext}</code> <CopyButton text={plaintext} label="Copy key" />
          </div>
        )}
      </form>
      {keys.isPending && <Spinner />}
      <ErrorText error={keys.error ?? revoke.error} />
      {keys.data && (
        <TableWrap label="API keys">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Scopes</th>
                <th scope="col">Project</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.key_prefix}…</code>
                  </td>
                  <td className="small">{k.scopes.join(', ')}</td>
                  <td>{k.project_id ?? 'all'}</td>
                  <td>{formatTime(k.expires_at)}</td>
                  <td>{formatTime(k.last_used_at)}</td>
                  <td>
                    {k.is_active ? (
                      <Button kind="danger" onClick={() => setRevoking(k)}>
                        Revoke <span className="sr-only">{k.name}</span>
                      </Button>
                    ) : (
                      <span className="muted">revoked</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      <Confirm
        open={revoking !== null}
        title={`Revoke ${revoking?.name ?? ''}?`}
        confirmLabel="Revoke"
        danger
        busy={revoke.isPending}
        onConfirm={() => revoking && revoke.mutate(revoking.id)}
        onClose={() => setRevoking(null)}
      >
        <p>Requests with this key are refused at once, and dashboard sessions signed in with it end.</p>
      </Confirm>
    </section>
  );
}
