import { listProjects, type Project } from '@capydb/sdk';
import { useQuery } from '@tanstack/react-query';
import { Link, useNavigate, useSearch } from '@tanstack/react-router';
import { useDeferredValue, useMemo } from 'react';
import { unwrap } from '../api';
import { ErrorText, Spinner, StateBadge, formatTime, TableWrap } from '../ui';

export const PAGE_SIZE = 25;

// filterProjects matches the search against name, slug, id, region and state.
export function filterProjects(all: Project[], q: string): Project[] {
  const needle = q.trim().toLowerCase();
  if (!needle) return all;
  return all.filter((p) =>
    [p.name, p.slug, p.id, p.region, p.state, p.environment].some((f) => f.toLowerCase().includes(needle)),
  );
}

export function useProjects() {
  // One request for the whole list (the API's limit=0): search and paging
  // are then instant, and only one page of rows is ever rendered.
  return useQuery({
    queryKey: ['projects'],
    queryFn: () => unwrap(listProjects()).then((b) => b.projects),
    refetchInterval: (q) => (q.state.data?.some((p) => p.state !== 'ready' && p.state !== 'failed') ? 2000 : false),
  });
}

export function ProjectsPage() {
  const { q, page } = useSearch({ from: '/' });
  const navigate = useNavigate({ from: '/' });
  const projects = useProjects();
  const query = useDeferredValue(q);
  const matches = useMemo(() => filterProjects(projects.data ?? [], query), [projects.data, query]);
  const pages = Math.max(1, Math.ceil(matches.length / PAGE_SIZE));
  const current = Math.min(page, pages);
  const rows = matches.slice((current - 1) * PAGE_SIZE, current * PAGE_SIZE);
  const go = (p: number) => navigate({ search: { q, page: p } });
  return (
    <section aria-labelledby="projects-title">
      <div className="row between">
        <h1 id="projects-title">Projects</h1>
        <Link to="/projects/new" className="btn btn-primary">
          New project
        </Link>
      </div>
      <div className="field inline">
        <label htmlFor="project-search">Search projects</label>
        <input
          id="project-search"
          type="search"
          value={q}
          placeholder="name, id, region, state…"
          onChange={(e) => navigate({ search: { q: e.target.value, page: 1 }, replace: true })}
        />
      </div>
      {projects.isPending && <Spinner />}
      <ErrorText error={projects.error} />
      {projects.data && (
        <>
          <p className="muted" role="status" aria-live="polite">
            {matches.length} of {projects.data.length} projects
          </p>
          <TableWrap label="Projects">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">State</th>
                  <th scope="col">Environment</th>
                  <th scope="col">Region</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((p) => (
                  <tr key={p.id}>
                    <td>
                      <Link to="/projects/$projectId" params={{ projectId: p.id }}>
                        {p.name}
                      </Link>
                      <div className="muted small">{p.id}</div>
                    </td>
                    <td>
                      <StateBadge state={p.state} />
                    </td>
                    <td>{p.environment === 'production' ? 'production' : 'non-production'}</td>
                    <td>{p.region}</td>
                    <td>{formatTime(p.created_at)}</td>
                  </tr>
                ))}
                {rows.length === 0 && (
                  <tr>
                    <td colSpan={5} className="muted">
                      {projects.data.length ? 'No project matches the search.' : 'No projects yet.'}
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </TableWrap>
          <nav className="row pager" aria-label="Pagination">
            <button type="button" className="btn btn-secondary" disabled={current <= 1} onClick={() => go(current - 1)}>
              Previous
            </button>
            <span>
              Page {current} of {pages}
            </span>
            <button type="button" className="btn btn-secondary" disabled={current >= pages} onClick={() => go(current + 1)}>
              Next
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
