import type { ConnectionInfo } from '@capydb/sdk';

// The variables `capydb env pull` writes (internal/cli/envfile.go envVarsFor),
// from the same connections object: DATABASE_URL is the pooled URL for
// stacks whose default is the pooler, the direct URL otherwise.
export const STACKS: Record<string, { label: string; pooled: boolean }> = {
  prisma: { label: 'Prisma', pooled: true },
  drizzle: { label: 'Drizzle', pooled: true },
  pg: { label: 'node-postgres', pooled: true },
  nextjs: { label: 'Next.js', pooled: true },
  pgx: { label: 'Go (pgx)', pooled: false },
  sqlalchemy: { label: 'SQLAlchemy / Django', pooled: false },
  active_record: { label: 'Rails (Active Record)', pooled: false },
};

export function envVars(stack: string, c: ConnectionInfo): [string, string][] {
  const direct = c.direct_url ?? '';
  const pooled = c.pooled_url ?? '';
  const vars: [string, string][] = [
    ['DATABASE_URL', STACKS[stack]?.pooled ? pooled : direct],
    ['DATABASE_DIRECT_URL', direct],
    ['DATABASE_POOL_URL', pooled],
    ['DIRECT_URL', direct],
    ['DATABASE_URL_UNPOOLED', direct],
  ];
  if (c.session_url) vars.push(['DATABASE_SESSION_URL', c.session_url]);
  return vars;
}

export const dotenv = (vars: [string, string][]) => vars.map(([k, v]) => `${k}=${v}`).join('\n');
