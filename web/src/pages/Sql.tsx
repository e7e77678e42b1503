import {
  createProjectSnippet,
  deleteProjectSnippet,
  listProjectSnippets,
  listProjectSqlHistory,
  runPreviewSql,
  runProjectSql,
  type SqlQueryResult,
} from '@capydb/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { ResultGrid } from '../grid';
import { Button, ErrorText, Field, Spinner, formatTime } from '../ui';
import { usePreviewList } from './BackupActions';

type Mode = 'safe' | 'advanced';

// SqlPage is the Studio's SQL editor: safe mode (a READ ONLY transaction) by
// default, advanced mode for writes and DDL (UPDATE/DELETE without WHERE and
// TRUNCATE still need the extra box). Results, errors, history and snippets
// are all rendered as text.
export function SqlPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const qc = useQueryClient();
  const [query, setQuery] = useState('select now()');
  const [mode, setMode] = useState<Mode>('safe');
  const [unqualified, setUnqualified] = useState(false);
  const [maxRows, setMaxRows] = useState(200);
  const [result, setResult] = useState<SqlQueryResult>();
  // The query runs in the project's database or in one of its ready previews.
  const [target, setTarget] = useState('');
  const previews = usePreviewList(projectId);
  const ready = previews.data?.filter((p) => p.state === 'ready') ?? [];
  const historyKey = ['sql-history', projectId];
  const run = useMutation({
    mutationFn: () => {
      const body = {
        query,
        read_only: mode === 'safe',
        allow_unqualified_writes: mode === 'advanced' && unqualified ? true : undefined,
        max_rows: maxRows,
      };
      return unwrap(
        target ? runPreviewSql({ path: { previewID: target }, body }) : runProjectSql({ path: { projectID: projectId }, body }),
      ).then((b) => b.result);
    },
    onMutate: () => setResult(undefined),
    onSuccess: (r) => setResult(r),
    onSettled: () => {
      qc.invalidateQueries({ queryKey: historyKey });
      if (mode === 'advanced') qc.invalidateQueries({ queryKey: ['tables', projectId] });
    },
  });
  return (
    <div className="studio">
      <div>
        <h2>SQL editor</h2>
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            run.mutate();
          }}
        >
          <Field label="SQL" hint="Ctrl+Enter runs. Every request is one transaction, rolled back on error.">
            {(id, hint) => (
              <textarea
                id={id}
                aria-describedby={hint}
                spellCheck={false}
                value={query}
                onChange={(e) => setQuery(e.target.value)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                    e.preventDefault();
                    run.mutate();
                  }
                }}
              />
            )}
          </Field>
          <div className="row wrap">
            <Field label="Database" hint="Preview queries are audited but not kept in the history.">
              {(id, hint) => (
                <select id={id} aria-describedby={hint} value={target} onChange={(e) => setTarget(e.target.value)}>
                  <option value="">the project</option>
                  {ready.map((p) => (
                    <option key={p.id} value={p.id}>
                      preview {p.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <fieldset>
              <legend>Mode</legend>
              <label className="radio">
                <input type="radio" name="mode" checked={mode === 'safe'} onChange={() => setMode('safe')} />
                Safe (read-only)
              </label>
              <label className="radio">
                <input type="radio" name="mode" checked={mode === 'advanced'} onChange={() => setMode('advanced')} />
                Advanced (writes and DDL)
              </label>
              {mode === 'advanced' && (
                <label className="check">
                  <input type="checkbox" checked={unqualified} onChange={(e) => setUnqualified(e.target.checked)} />
                  Allow UPDATE/DELETE without WHERE and TRUNCATE
                </label>
              )}
            </fieldset>
            <Field label="Max rows">
              {(id) => (
                <input id={id} type="number" min={1} max={1000} value={maxRows} onChange={(e) => setMaxRows(Number(e.target.value) || 200)} />
              )}
            </Field>
            <Button type="submit" kind="primary" busy={run.isPending}>
              Run
            </Button>
          </div>
        </form>
        <ErrorText error={run.error} />
        {result && <ResultView result={result} />}
      </div>
      <aside>
        <Snippets projectId={projectId} query={query} onOpen={setQuery} />
        <History projectId={projectId} onOpen={setQuery} />
      </aside>
    </div>
  );
}

function ResultView({ result }: { result: SqlQueryResult }) {
  return (
    <section aria-label="Result">
      <p className="muted" role="status">
        {result.columns.length > 0 ? `${result.rows.length} row${result.rows.length === 1 ? '' : 's'}` : `${result.row_count} row(s) affected`} in{' '}
        {result.duration_ms} ms
      </p>
      {result.truncated && (
        <p className="notice" role="note">
          Truncated: more rows exist than were returned. Raise Max rows (up to 1000) or add a LIMIT/WHERE.
        </p>
      )}
      <ResultGrid label="Query result" columns={result.columns} rows={result.rows} />
    </section>
  );
}

function Snippets({ projectId, query, onOpen }: { projectId: string; query: string; onOpen: (q: string) => void }) {
  const qc = useQueryClient();
  const key = ['snippets', projectId];
  const [name, setName] = useState('');
  const snippets = useQuery({
    queryKey: key,
    queryFn: () => unwrap(listProjectSnippets({ path: { projectID: projectId } })).then((b) => b.snippets),
  });
  const save = useMutation({
    mutationFn: () => unwrap(createProjectSnippet({ path: { projectID: projectId }, body: { name: name.trim(), query } })),
    onSuccess: () => {
      setName('');
      qc.invalidateQueries({ queryKey: key });
    },
  });
  const del = useMutation({
    mutationFn: (id: string) => unwrap(deleteProjectSnippet({ path: { projectID: projectId, snippetID: id } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: key }),
  });
  return (
    <section className="card" aria-labelledby="snippets-title">
      <h3 id="snippets-title">Snippets</h3>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <Field label="Snippet name">
          {(id) => <input id={id} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Button type="submit" busy={save.isPending}>
          Save query as snippet
        </Button>
      </form>
      <ErrorText error={save.error ?? del.error ?? snippets.error} />
      {snippets.isPending && <Spinner />}
      <ul className="side-list">
        {snippets.data?.map((s) => (
          <li key={s.id}>
            <div className="row between">
              <button type="button" className="link" onClick={() => onOpen(s.query)}>
                {s.name}
              </button>
              <Button onClick={() => del.mutate(s.id)}>
                Delete <span className="sr-only">snippet {s.name}</span>
              </Button>
            </div>
          </li>
        ))}
        {snippets.data?.length === 0 && <li className="muted">No snippets yet.</li>}
      </ul>
    </section>
  );
}

function History({ projectId, onOpen }: { projectId: string; onOpen: (q: string) => void }) {
  const history = useQuery({
    queryKey: ['sql-history', projectId],
    queryFn: () => unwrap(listProjectSqlHistory({ path: { projectID: projectId }, query: { limit: 25 } })).then((b) => b.sql_history),
  });
  return (
    <section className="card" aria-labelledby="history-title">
      <h3 id="history-title">History</h3>
      {history.isPending && <Spinner />}
      <ErrorText error={history.error} />
      <ul className="side-list" aria-label="Query history">
        {history.data?.map((h) => (
          <li key={h.id}>
            <button type="button" className="link" onClick={() => onOpen(h.query)}>
              <code>{h.query}</code>
            </button>
            <span className="small muted">
              {formatTime(h.created_at)} · {h.read_only ? 'safe' : 'advanced'} · {h.error ? 'failed' : `${h.row_count} rows`} · {h.duration_ms} ms
            </span>
          </li>
        ))}
        {history.data?.length === 0 && <li className="muted">Nothing run yet.</li>}
      </ul>
    </section>
  );
}
