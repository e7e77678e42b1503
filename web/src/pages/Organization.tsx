import { getOrganization, updateOrganization } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { unwrap } from '../api';
import { useSession } from '../session';
import { Button, ErrorText, Field, Spinner, formatTime } from '../ui';

export function OrganizationPage() {
  const { organization_id: orgID } = useSession();
  const qc = useQueryClient();
  const org = useQuery({ queryKey: ['organization', orgID], queryFn: () => unwrap(getOrganization({ path: { orgID } })).then((b) => b.organization) });
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  useEffect(() => {
    if (org.data) {
      setName(org.data.name);
      setEmail(org.data.billing_email ?? '');
    }
  }, [org.data]);
  const save = useMutation({
    mutationFn: () => unwrap(updateOrganization({ path: { orgID }, body: { name: name.trim(), billing_email: email.trim() } })),
    onSuccess: (r) => qc.setQueryData(['organization', orgID], r.organization),
  });
  return (
    <section aria-labelledby="org-title" className="narrow">
      <h1 id="org-title">Organization</h1>
      {org.isPending && <Spinner />}
      <ErrorText error={org.error} />
      {org.data && (
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate();
          }}
        >
          <dl className="details">
            <dt>ID</dt>
            <dd>{org.data.id}</dd>
            <dt>Slug</dt>
            <dd>{org.data.slug}</dd>
            <dt>Plan</dt>
            <dd>{org.data.billing_plan}</dd>
            <dt>Created</dt>
            <dd>{formatTime(org.data.created_at)}</dd>
          </dl>
          <Field label="Name">{(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
          <Field label="Billing email">{(id) => <input id={id} type="email" value={email} onChange={(e) => setEmail(e.target.value)} />}</Field>
          <ErrorText error={save.error} />
          {save.isSuccess && !save.isPending && <p role="status">Saved.</p>}
          <Button type="submit" kind="primary" busy={save.isPending}>
            Save
          </Button>
        </form>
      )}
    </section>
  );
}
