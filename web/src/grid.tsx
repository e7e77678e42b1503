// ResultGrid renders rows of a Studio result (SQL runner, table browser).
// Every value becomes a React text node: a cell holding "<script>" shows
// those characters, never markup.
export function formatCell(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function ResultGrid({
  label,
  columns,
  rows,
  rowOffset = 0,
}: {
  label: string;
  columns: string[];
  rows: unknown[];
  rowOffset?: number;
}) {
  if (columns.length === 0) return null;
  return (
    <div className="table-wrap grid-wrap" tabIndex={0} role="region" aria-label={label}>
      <table className="result-grid">
        <thead>
          <tr>
            <th scope="col" className="rownum">
              <span className="sr-only">Row</span>#
            </th>
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => {
            const row = (r ?? {}) as Record<string, unknown>;
            return (
              <tr key={i}>
                <td className="rownum">{rowOffset + i + 1}</td>
                {columns.map((c) => {
                  const v = row[c];
                  return (
                    <td key={c} className={v === null || v === undefined ? 'null' : undefined}>
                      {formatCell(v)}
                    </td>
                  );
                })}
              </tr>
            );
          })}
          {rows.length === 0 && (
            <tr>
              <td colSpan={columns.length + 1} className="muted">
                No rows.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
