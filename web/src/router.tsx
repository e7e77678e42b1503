import { createRootRoute, createRoute, createRouter, lazyRouteComponent } from '@tanstack/react-router';
import { Shell } from './pages/Shell';
import { ProjectsPage } from './pages/Projects';
import { NewProjectPage } from './pages/NewProject';
import { ProjectLayout, ProjectOverview } from './pages/Project';
import { PreviewsPage } from './pages/Previews';
import { BackupsPage } from './pages/Backups';
import { ProjectJobsPage, JobPage } from './pages/Jobs';
import { ProjectSettingsPage } from './pages/ProjectSettings';
import { ApiKeysPage } from './pages/ApiKeys';
import { WebhooksPage } from './pages/Webhooks';
import { OrganizationPage } from './pages/Organization';
import { AuditPage } from './pages/Audit';
import { ExportsPage } from './pages/Exports';
import { ImportsPage } from './pages/Imports';

// The Studio, observability and settings pages are chunks of their own: the
// router starts loading a page's chunk as the URL matches (alongside the
// session request), so the first paint of the other pages does not pay for
// them. (lazyRouteComponent also preloads on hover, with defaultPreload.)
const SqlPage = lazyRouteComponent(() => import('./pages/Sql'), 'SqlPage');
const TablesPage = lazyRouteComponent(() => import('./pages/Tables'), 'TablesPage');
const SchemaPage = lazyRouteComponent(() => import('./pages/Schema'), 'SchemaPage');
const MetricsPage = lazyRouteComponent(() => import('./pages/Metrics'), 'MetricsPage');
const LogsPage = lazyRouteComponent(() => import('./pages/Logs'), 'LogsPage');
const DatabaseSettingsPage = lazyRouteComponent(() => import('./pages/DatabaseSettings'), 'DatabaseSettingsPage');
const ExtensionsPage = lazyRouteComponent(() => import('./pages/Extensions'), 'ExtensionsPage');

const rootRoute = createRootRoute({ component: Shell });

export type ProjectsSearch = { q: string; page: number };

const projects = createRoute({
  getParentRoute: () => rootRoute,
  path: '/',
  component: ProjectsPage,
  validateSearch: (s: Record<string, unknown>): ProjectsSearch => ({
    q: typeof s.q === 'string' ? s.q : '',
    page: Math.max(1, Number(s.page) || 1),
  }),
});
const newProject = createRoute({ getParentRoute: () => rootRoute, path: '/projects/new', component: NewProjectPage });
const project = createRoute({ getParentRoute: () => rootRoute, path: '/projects/$projectId', component: ProjectLayout });
const overview = createRoute({ getParentRoute: () => project, path: '/', component: ProjectOverview });
const previews = createRoute({ getParentRoute: () => project, path: '/previews', component: PreviewsPage });
const backups = createRoute({ getParentRoute: () => project, path: '/backups', component: BackupsPage });
const projectJobs = createRoute({ getParentRoute: () => project, path: '/jobs', component: ProjectJobsPage });
const settings = createRoute({ getParentRoute: () => project, path: '/settings', component: ProjectSettingsPage });
const exportsRoute = createRoute({ getParentRoute: () => project, path: '/exports', component: ExportsPage });
const importsRoute = createRoute({ getParentRoute: () => project, path: '/imports', component: ImportsPage });
const sql = createRoute({ getParentRoute: () => project, path: '/sql', component: SqlPage });
const tables = createRoute({ getParentRoute: () => project, path: '/tables', component: TablesPage });
const schema = createRoute({ getParentRoute: () => project, path: '/schema', component: SchemaPage });
const metrics = createRoute({ getParentRoute: () => project, path: '/metrics', component: MetricsPage });
const logs = createRoute({ getParentRoute: () => project, path: '/logs', component: LogsPage });
const database = createRoute({ getParentRoute: () => project, path: '/database', component: DatabaseSettingsPage });
const extensions = createRoute({ getParentRoute: () => project, path: '/extensions', component: ExtensionsPage });
const audit = createRoute({ getParentRoute: () => project, path: '/audit', component: AuditPage });
const webhooks = createRoute({ getParentRoute: () => rootRoute, path: '/webhooks', component: WebhooksPage });
const organization = createRoute({ getParentRoute: () => rootRoute, path: '/organization', component: OrganizationPage });
const apiKeys = createRoute({ getParentRoute: () => rootRoute, path: '/api-keys', component: ApiKeysPage });
const job = createRoute({ getParentRoute: () => rootRoute, path: '/jobs/$jobId', component: JobPage });

const routeTree = rootRoute.addChildren([
  projects,
  newProject,
  project.addChildren([
    overview,
    sql,
    tables,
    schema,
    metrics,
    logs,
    previews,
    backups,
    exportsRoute,
    importsRoute,
    database,
    extensions,
    projectJobs,
    audit,
    settings,
  ]),
  apiKeys,
  webhooks,
  organization,
  job,
]);

export const router = createRouter({ routeTree, basepath: '/dashboard', defaultPreload: 'intent' });

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router;
  }
}
