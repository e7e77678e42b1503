import { diffPreviewSchema, generateProjectTypes, getIndexAdvisor, getIndexHygiene, getProjectSchema, lintProject, type SchemaTable } from '@capydb/sdk';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { Button, ErrorText, Field, Spinner, StateBadge, TableWrap, formatBytes } from '../ui';
import { usePreviewList } from './BackupActions';

// SchemaPage: the schema document, generated types (downloaded as a file),
// lint, index advice and the diff of a preview against the project. All read
// only; every name and definition is shown as text.
export function SchemaPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const schema = useQuery({
    queryKey: ['schema', projectId],
    queryFn: () => unwrap(getProjectSchema({ path: { projectID: projectId } })).then((b) => b.schema),
  });
  const s = schema.data;
  return (
    <div>
      <h2>Schema</h2>
      {schema.isPending && <Spinner />}
      <ErrorText error={schema.error} />
      {s && (
        <section className="card" aria-labelledby="schema-doc">
          <h3 id="schema-doc">
            {s.database_name} <span className="small muted">PostgreSQL {s.postgres_version}</span>
          </h3>
          <p className="small muted">Extensions: {s.extensions.map((e) => `${e.name} ${e.version}`).join(', ') || 'none'}</p>
          {s.schemas.map((ns) => (
            <div key={ns.name}>
              <h4>Schema {ns.name}</h4>
              {ns.tables.map((t) => (
                <TableDoc key={t.name} schema={ns.name} t={t} />
              ))}
              {ns.enums.map((e) => (
                <p key={e.name} className="small">
                  enum <code>{e.name}</code>: {e.values.join(', ')}
                </p>
              ))}
              {ns.tables.length === 0 && ns.enums.length === 0 && <p className="muted">Empty.</p>}
            </div>
          ))}
          {s.schemas.length === 0 && <p className="muted">No user schemas.</p>}
        </section>
      )}
      <div className="grid">
        <Types projectId={projectId} />
        <Diff projectId={projectId} />
      </div>
      <Lint projectId={projectId} />
      <Advisor projectId={projectId} />
    </div>
  );
}

function TableDoc({ schema, t }: { schema: string; t: SchemaTable }) {
  return (
    <details>
      <summary>
        <code>
          {schema}.{t.name}
        </code>{' '}
        <span className="small muted">
          {t.kind} · {t.columns.length} columns{t.primary_key.length ? ` · primary key (${t.primary_key.join(', ')})` : ''}
        </span>
      </summary>
      <TableWrap label={`Columns of ${schema}.${t.name}`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Column</th>
              <th scope="col">Type</th>
              <th scope="col">Nullable</th>
              <th scope="col">Default</th>
            </tr>
          </thead>
          <tbody>
            {t.columns.map((c) => (
              <tr key={c.name}>
                <td>{c.name}</td>
                <td>{c.data_type}</td>
                <td>{c.is_nullable ? 'yes' : 'no'}</td>
                <td>{c.default ?? (c.identity ? `identity (${c.identity})` : '—')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {t.foreign_keys.map((fk) => (
        <p key={fk.name} className="small">
          foreign key <code>{fk.name}</code>: ({fk.columns.join(', ')}) → {fk.referenced_schema}.{fk.referenced_table} (
          {fk.referenced_columns.join(', ')})
        </p>
      ))}
    </details>
  );
}

const LANGS: Record<string, string[]> = { typescript: ['capydb', 'supabase'], zod: [], drizzle: [], go: [], python: ['dataclass', 'pydantic'] };

// Types asks the server for the generated file and hands it to the browser as
// a download (a blob: URL of this origin; nothing is rendered as HTML).
function Types({ projectId }: { projectId: string }) {
  const [language, setLanguage] = useState('typescript');
  const [style, setStyle] = useState('');
  const gen = useMutation({
    mutationFn: () =>
      unwrap(generateProjectTypes({ path: { projectID: projectId }, query: { language, style: style || undefined } })).then((b) => b.types),
    onSuccess: (t) => {
      const url = URL.createObjectURL(new Blob([t.content], { type: 'text/plain' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = t.filename;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
  });
  return (
    <section className="card" aria-labelledby="types-title">
      <h3 id="types-title">Types</h3>
      <div className="row wrap">
        <Field label="Language">
          {(id) => (
            <select
              id={id}
              value={language}
              onChange={(e) => {
                setLanguage(e.target.value);
                setStyle('');
              }}
            >
              {Object.keys(LANGS).map((l) => (
                <option key={l}>{l}</option>
              ))}
            </select>
          )}
        </Field>
        {LANGS[language].length > 0 && (
          <Field label="Style">
            {(id) => (
              <select id={id} value={style} onChange={(e) => setStyle(e.target.value)}>
                <option value="">default</option>
                {LANGS[language].map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            )}
          </Field>
        )}
        <Button kind="primary" busy={gen.isPending} onClick={() => gen.mutate()}>
          Download types
        </Button>
      </div>
      <ErrorText error={gen.error} />
      {gen.data && (
        <>
          <p className="small muted" role="status">
            Downloaded {gen.data.filename}
          </p>
          <pre className="log" aria-label="Generated types" tabIndex={0}>
            {gen.data.content}
          </pre>
        </>
      )}
    </section>
  );
}

function Diff({ projectId }: { projectId: string }) {
  const previews = usePreviewList(projectId);
  const ready = previews.data?.filter((p) => p.state === 'ready') ?? [];
  const [preview, setPreview] = useState('');
  const chosen = preview || ready[0]?.id || '';
  const diff = useQuery({
    queryKey: ['schema-diff', chosen],
    queryFn: () => unwrap(diffPreviewSchema({ path: { previewID: chosen } })).then((b) => b.diff),
    enabled: false,
  });
  return (
    <section className="card" aria-labelledby="diff-title">
      <h3 id="diff-title">Diff a preview against the project</h3>
      {ready.length === 0 ? (
        <p className="muted">No ready preview to compare.</p>
      ) : (
        <div className="row wrap">
          <Field label="Preview">
            {(id) => (
              <select id={id} value={chosen} onChange={(e) => setPreview(e.target.value)}>
                {ready.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Button busy={diff.isFetching} onClick={() => void diff.refetch()}>
            Compare
          </Button>
        </div>
      )}
      <ErrorText error={diff.error} />
      {diff.data &&
        (diff.data.in_sync ? (
          <p role="status">In sync: no differences.</p>
        ) : (
          <ul className="plain" aria-label="Differences">
            {diff.data.differences.map((d, i) => (
              <li key={i}>
                <StateBadge state={d.change} /> {d.object_type} <code>{d.object}</code>
                {d.field && (
                  <span className="small">
                    {' '}
                    {d.field}: {d.from ?? '—'} → {d.to ?? '—'}
                  </span>
                )}
              </li>
            ))}
          </ul>
        ))}
    </section>
  );
}

function Lint({ projectId }: { projectId: string }) {
  const lint = useQuery({
    queryKey: ['lint', projectId],
    queryFn: () => unwrap(lintProject({ path: { projectID: projectId } })).then((b) => b.lint),
  });
  return (
    <section aria-labelledby="lint-title">
      <h3 id="lint-title">Lint</h3>
      {lint.isPending && <Spinner />}
      <ErrorText error={lint.error} />
      {lint.data && (
        <TableWrap label="Lint findings">
          <table>
            <thead>
              <tr>
                <th scope="col">Severity</th>
                <th scope="col">Rule</th>
                <th scope="col">Object</th>
                <th scope="col">Message</th>
                <th scope="col">Fix</th>
              </tr>
            </thead>
            <tbody>
              {lint.data.findings.map((f, i) => (
                <tr key={i}>
                  <td>
                    <StateBadge state={f.severity === 'warning' ? 'warn' : f.severity} />
                  </td>
                  <td>{f.rule}</td>
                  <td>{f.object}</td>
                  <td>{f.message}</td>
                  <td>{f.fix ? <code>{f.fix}</code> : '—'}</td>
                </tr>
              ))}
              {lint.data.findings.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    No findings.
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

function Advisor({ projectId }: { projectId: string }) {
  const advisor = useQuery({
    queryKey: ['advisor', projectId],
    queryFn: () => unwrap(getIndexAdvisor({ path: { projectID: projectId } })).then((b) => b.advisor),
  });
  const hygiene = useQuery({
    queryKey: ['hygiene', projectId],
    queryFn: () => unwrap(getIndexHygiene({ path: { projectID: projectId } })).then((b) => b.hygiene),
  });
  const a = advisor.data;
  const h = hygiene.data;
  return (
    <section aria-labelledby="advisor-title">
      <h3 id="advisor-title">Index advisor</h3>
      <ErrorText error={advisor.error ?? hygiene.error} />
      {(advisor.isPending || hygiene.isPending) && <Spinner />}
      {a && !a.available && <p className="muted">Not available: {a.reason ?? `missing ${a.missing_extensions.join(', ')}`}</p>}
      {a?.available && (
        <ul className="plain" aria-label="Index suggestions">
          {a.suggestions.map((s, i) => (
            <li key={i} className="card">
              <code>{s.ddl}</code>
              <span className="small muted">
                {s.estimated_cost_reduction_pct !== undefined && ` · cost −${Math.round(s.estimated_cost_reduction_pct)}%`}
                {s.estimated_size_bytes !== undefined && ` · ${formatBytes(s.estimated_size_bytes)}`}
              </span>
            </li>
          ))}
          {a.suggestions.length === 0 && <li className="muted">No index suggestions for the recorded queries.</li>}
        </ul>
      )}
      {h && !h.available && <p className="muted">Index hygiene not available: {h.reason}</p>}
      {h?.available && (
        <p className="small">
          Unused indexes: {h.unused_indexes.map((u) => `${u.schema}.${u.index}`).join(', ') || 'none'} · redundant:{' '}
          {h.redundant_indexes.map((u) => `${u.schema}.${u.index} (covered by ${u.covered_by})`).join(', ') || 'none'} · reclaimable{' '}
          {formatBytes(h.reclaimable_bytes)}
        </p>
      )}
    </section>
  );
}
