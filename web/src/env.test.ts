import { describe, expect, it } from 'vitest';
import { dotenv, envVars } from './env';

const c = { username: 'u', direct_url: 'postgres://d', pooled_url: 'postgres://p', session_url: 'postgres://s' };

describe('envVars (same as capydb env pull)', () => {
  it('points DATABASE_URL at the pooler for Prisma and at the direct port for pgx', () => {
    expect(envVars('prisma', c)[0]).toEqual(['DATABASE_URL', 'postgres://p']);
    expect(envVars('pgx', c)[0]).toEqual(['DATABASE_URL', 'postgres://d']);
  });
  it('writes every variable the CLI writes', () => {
    expect(dotenv(envVars('active_record', c))).toBe(
      [
        'DATABASE_URL=postgres://d',
        'DATABASE_DIRECT_URL=postgres://d',
        'DATABASE_POOL_URL=postgres://p',
        'DIRECT_URL=postgres://d',
        'DATABASE_URL_UNPOOLED=postgres://d',
        'DATABASE_SESSION_URL=postgres://s',
      ].join('\n'),
    );
    expect(envVars('pg', { ...c, session_url: undefined }).map(([k]) => k)).not.toContain('DATABASE_SESSION_URL');
  });
});
