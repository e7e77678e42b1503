// Type-checked (tsc, moduleResolution nodenext) against the packed package
// by e2e TestTypeScriptSDKPackage: the published .d.ts files resolve.
import { createCapyDB, CapyDBError, type CapyDB, type Project, type Job } from '@capydb/sdk';

const capydb: CapyDB = createCapyDB({ apiKey: 'capy_live_x', baseUrl: 'http://127.0.0.1:8080' });

export async function names(): Promise<string[]> {
  const { projects } = await capydb.listProjects();
  const p: Project | undefined = projects[0];
  const job: Job = await capydb.waitForJob('job_x', { timeoutMs: 1000 });
  return [p?.name ?? '', job.state];
}

export function status(e: unknown): number {
  return e instanceof CapyDBError ? e.status : 0;
}

// @ts-expect-error getProject needs its path parameters
void capydb.getProject();
