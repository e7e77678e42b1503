// createCapyDB: the generated operations bound to one server and API key,
// answering the response body or throwing CapyDBError, plus waitForJob.
import { createClient, createConfig } from './gen/client';
import * as ops from './gen/sdk.gen';
import type { Job } from './gen/types.gen';

export interface CapyDBOptions {
  /** API key (capy_live_...); omit in a browser on the server's own origin (session cookie). */
  apiKey?: string;
  /** e.g. http://127.0.0.1:8080 or https://db.example.com/api/capydb; paths start with /v1. */
  baseUrl: string;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

/** Every answer outside 2xx: the HTTP status and the server's {"error": "..."} message. */
export class CapyDBError extends Error {
  readonly status: number;
  readonly operation: string;
  /** Seconds from Retry-After on a 429, when sent. */
  readonly retryAfter?: number;
  constructor(operation: string, status: number, message: string, retryAfter?: number) {
    super(`${operation}: ${status}: ${message}`);
    this.name = 'CapyDBError';
    this.operation = operation;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** waitForJob's error for a job that ended in state failed. */
export class JobFailedError extends Error {
  readonly job: Job;
  constructor(job: Job) {
    super(`job ${job.id} (${job.type}) failed: ${job.error ?? ''}`);
    this.name = 'JobFailedError';
    this.job = job;
  }
}

type Ops = typeof ops;
type OpName = { [K in keyof Ops]: Ops[K] extends (...args: any[]) => any ? K : never }[keyof Ops];
// Each method takes the generated function's options (path, query, body)
// without the client, and resolves to the success body.
type Method<F extends (...args: any[]) => any> = (
  ...args: Parameters<F>
) => Promise<NonNullable<Awaited<ReturnType<F>>['data']>>;

export type CapyDB = { [K in OpName]: Method<Ops[K]> } & {
  /** Poll GET /v1/jobs/{id} until completed (resolved) or failed (JobFailedError). */
  waitForJob(jobId: string, opts?: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal }): Promise<Job>;
};

export function createCapyDB(options: CapyDBOptions): CapyDB {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  if (!baseUrl) throw new Error('createCapyDB: baseUrl is required');
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers.Authorization = `Bearer ${options.apiKey}`;
  const client = createClient(createConfig({ baseUrl, headers, ...(options.fetch ? { fetch: options.fetch } : {}) }));

  const api: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops)) {
    if (typeof fn !== 'function') continue;
    api[name] = async (opts?: Record<string, unknown>) => {
      const res = await (fn as (o: unknown) => Promise<{ data?: unknown; error?: unknown; response?: Response }>)({
        ...opts,
        client,
        throwOnError: false,
      });
      const status = res.response?.status ?? 0;
      if (res.error !== undefined || status >= 400 || !res.response) {
        const e = res.error as { error?: unknown } | string | undefined;
        const msg =
          typeof e === 'object' && e && typeof e.error === 'string'
            ? e.error
            : typeof e === 'string' && e
              ? e
              : res.response?.statusText || 'request failed';
        const ra = Number(res.response?.headers.get('Retry-After'));
        throw new CapyDBError(name, status, msg, Number.isFinite(ra) && ra > 0 ? ra : undefined);
      }
      return res.data;
    };
  }

  const self = api as CapyDB;
  self.waitForJob = async (jobId, opts = {}) => {
    const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
    let wait = opts.intervalMs ?? 200;
    for (;;) {
      const { job } = await self.getJob({ path: { jobID: jobId } });
      if (job.state === 'completed') return job;
      if (job.state === 'failed') throw new JobFailedError(job);
      if (Date.now() + wait > deadline) throw new Error(`timed out waiting for job ${jobId} (state ${job.state})`);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, wait);
        opts.signal?.addEventListener('abort', () => (clearTimeout(t), reject(opts.signal!.reason)), { once: true });
      });
      if (!opts.intervalMs) wait = Math.min(wait * 2, 2000);
    }
  };
  return self;
}
