import { getProjectTableRows, listProjectTables, type DatabaseTable } from '@capydb/sdk';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { unwrap } from '../api';
import { ResultGrid } from '../grid';
import { Button, ErrorText, Spinner } from '../ui';

const PAGE = 50;

// TablesPage browses the project's tables: the list, then one table's rows
// a page at a time (ordered by the primary key on the server).
export function TablesPage() {
  const { projectId } = useParams({ from: '/projects/$projectId' });
  const tables = useQuery({
    queryKey: ['tables', projectId],
    queryFn: () => unwrap(listProjectTables({ path: { projectID: projectId } })).then((b) => b.tables),
  });
  const [sel, setSel] = useState<DatabaseTable>();
  const [offset, setOffset] = useState(0);
  return (
    <div>
      <h2>Tables</h2>
      {tables.isPending && <Spinner />}
      <ErrorText error={tables.error} />
      {tables.data && (
        <div className="browser">
          <nav aria-label="Tables" className="card">
            <ul>
              {tables.data.map((t) => {
                const current = sel?.schema === t.schema && sel.table === t.table;
                return (
                  <li key={`${t.schema}.${t.table}`}>
                    <button
                      type="button"
                      aria-current={current}
                      onClick={() => {
                        setSel(t);
                        setOffset(0);
                      }}
                    >
                      {t.schema}.{t.table}
                      <span className="small muted">
                        {' '}
                        {t.type}
                        {t.estimated_rows !== undefined && t.estimated_rows >= 0 ? ` · ~${t.estimated_rows}` : ''}
                      </span>
                    </button>
                  </li>
                );
              })}
              {tables.data.length === 0 && <li className="muted">No tables yet. Create one in the SQL editor.</li>}
            </ul>
          </nav>
          <div>{sel ? <Rows projectId={projectId} table={sel} offset={offset} setOffset={setOffset} /> : <p className="muted">Pick a table.</p>}</div>
        </div>
      )}
    </div>
  );
}

function Rows({ projectId, table, offset, setOffset }: { projectId: string; table: DatabaseTable; offset: number; setOffset: (n: number) => void }) {
  const rows = useQuery({
    queryKey: ['rows', projectId, table.schema, table.table, offset],
    queryFn: () =>
      unwrap(
        getProjectTableRows({ path: { projectID: projectId, schema: table.schema, table: table.table }, query: { limit: PAGE, offset } }),
      ).then((b) => b.result),
    placeholderData: keepPreviousData,
  });
  const r = rows.data;
  const name = `${table.schema}.${table.table}`;
  return (
    <section aria-label={`Rows of ${name}`}>
      <div className="row between wrap">
        <h3>{name}</h3>
        <div className="row" role="group" aria-label="Pages">
          <Button disabled={offset === 0 || rows.isFetching} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            Previous page
          </Button>
          <span className="small muted" role="status">
            {r ? (r.rows.length ? `Rows ${offset + 1}–${offset + r.rows.length}` : 'No rows') : '…'}
          </span>
          <Button disabled={!r?.truncated || rows.isFetching} onClick={() => setOffset(offset + PAGE)}>
            Next page
          </Button>
        </div>
      </div>
      {rows.isPending && <Spinner />}
      <ErrorText error={rows.error} />
      {r && <ResultGrid label={`Rows of ${name}`} columns={r.columns} rows={r.rows} rowOffset={offset} />}
    </section>
  );
}
