import { createProject, listRegions } from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field } from '../ui';

export function NewProjectPage() {
  const navigate = useNavigate();
  const qc = useQueryClient();
  const regions = useQuery({ queryKey: ['regions'], queryFn: () => unwrap(listRegions()) });
  const [name, setName] = useState('');
  const [region, setRegion] = useState('');
  const [environment, setEnvironment] = useState<'non_production' | 'production'>('non_production');
  const create = useMutation({
    mutationFn: () =>
      unwrap(createProject({ body: { name: name.trim(), environment, ...(region ? { region } : {}) } })),
    onSuccess: (r) => {
      qc.invalidateQueries({ queryKey: ['projects'] });
      navigate({ to: '/projects/$projectId', params: { projectId: r.project.id } });
    },
  });
  const regionList = regions.data?.regions ?? [];
  return (
    <section aria-labelledby="new-title" className="narrow">
      <h1 id="new-title">New project</h1>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="Name">
          {(id) => <input id={id} required maxLength={63} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Region">
          {(id) => (
            <select id={id} value={region} onChange={(e) => setRegion(e.target.value)}>
              <option value="">Default</option>
              {regionList.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          )}
        </Field>
        <fieldset>
          <legend>Environment</legend>
          {(['non_production', 'production'] as const).map((env) => (
            <label key={env} className="radio">
              <input type="radio" name="environment" value={env} checked={environment === env} onChange={() => setEnvironment(env)} />
              {env === 'production' ? 'Production (always on; deletion needs an approval)' : 'Non-production'}
            </label>
          ))}
        </fieldset>
        <ErrorText error={create.error} />
        <Button type="submit" kind="primary" busy={create.isPending}>
          Create project
        </Button>
      </form>
    </section>
  );
}
