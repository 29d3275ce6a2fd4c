import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startDevServer, type DevServer } from '../../infra/temporal';
import { startCpuWorker, startGpuWorker, type ManagedProcess } from '../../infra/processes';

/** A real Temporal dev server (the CLI binary, SQLite in a temp dir) and a client for one test file. */
export interface TestTemporal {
  server: DevServer;
  client: Client;
  tmp: string;
  env: NodeJS.ProcessEnv;
  workers: ManagedProcess[];
  startCpuWorker(extraEnv?: NodeJS.ProcessEnv): Promise<ManagedProcess>;
  startGpuWorker(extraEnv?: NodeJS.ProcessEnv): Promise<ManagedProcess>;
  close(): Promise<void>;
}

export async function startTestTemporal(
  name: string,
  clientOptions: Partial<ConstructorParameters<typeof Client>[0]> = {},
): Promise<TestTemporal> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `distillery-${name}-`));
  const server = await startDevServer({
    headless: true,
    dbFile: path.join(tmp, 'temporal.sqlite'),
    logFile: path.join(tmp, 'temporal.log'),
  });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, ...clientOptions });
  const env = { TEMPORAL_ADDRESS: server.address };
  const workers: ManagedProcess[] = [];
  const track = async (p: Promise<ManagedProcess>) => {
    const w = await p;
    workers.push(w);
    return w;
  };
  return {
    server,
    client,
    tmp,
    env,
    workers,
    startCpuWorker: (extra = {}) => track(startCpuWorker({ ...env, ...extra }, path.join(tmp, 'cpu-worker.log'))),
    startGpuWorker: (extra = {}) => track(startGpuWorker({ ...env, ...extra }, path.join(tmp, 'gpu-worker.log'))),
    close: async () => {
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
      await connection.close();
      await server.stop();
    },
  };
}
