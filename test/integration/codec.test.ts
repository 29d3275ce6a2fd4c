import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import * as path from 'node:path';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { AesGcmCodec, codecFromEnv, dataConverterFromEnv, newKeyEntry } from '../../infra/codec/aes-gcm-codec';
import { startCodecServer } from '../../infra/codec/codec-server';
import { startTestTemporal, type TestTemporal } from '../helpers/stack';

/**
 * With the payload codec on, the Temporal server stores ciphertext only: the raw history (as the server returns it,
 * before any client-side decoding) holds no plaintext of the run spec. A control run without the codec shows the
 * check would see the plaintext. The codec server gives the UI the plaintext back.
 */
const KEYS = `${newKeyEntry()},${newKeyEntry()}`;
const TOKEN = randomUUID();
const UI_ORIGIN = 'http://127.0.0.1:8233';
let t: TestTemporal;
let codec: AesGcmCodec;

beforeAll(async () => {
  codec = codecFromEnv({ DISTILLERY_CODEC_KEYS: KEYS })!;
  t = await startTestTemporal('codec', { dataConverter: dataConverterFromEnv({ DISTILLERY_CODEC_KEYS: KEYS }) });
  await t.startCpuWorker({ DISTILLERY_CODEC_KEYS: KEYS });
});
afterAll(async () => t?.close());

function specWithSecret(marker: string) {
  return {
    name: 'codec-check',
    // A dataset path that does not exist (inside the worker's roots): the run fails at its first activity, after its
    // input is in history, with an error that quotes the path (and so the marker): failure messages must be encrypted too.
    dataset: { source: { type: 'jsonl', path: path.join(t.tmp, 'nonexistent', `${marker}.jsonl`) } },
    teacher: { baseURL: 'http://127.0.0.1:9/v1', model: 'm', systemPrompt: `You are ${marker}.` },
  };
}

async function rawHistory(workflowId: string): Promise<Buffer> {
  const res = await t.client.connection.workflowService.getWorkflowExecutionHistory({
    namespace: 'default',
    execution: { workflowId },
  });
  return Buffer.from(temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse.encode(res).finish());
}

test('encrypted run: the stored history holds no plaintext of the spec', async () => {
  const marker = `SECRET-${randomUUID()}`;
  const workflowId = `codec-${randomUUID()}`;
  const err = await t.client.workflow
    .execute('distillationWorkflow', { taskQueue: 'distillery', workflowId, args: [specWithSecret(marker)] })
    .catch((e) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError); // it ran: the worker decrypted the input and failed on the dataset
  // The client with the key reads the failure message back; the server holds it only encrypted.
  expect(String(((err as WorkflowFailedError).cause?.cause as Error | undefined)?.message)).toMatch(
    new RegExp(`${marker}.jsonl does not exist`),
  );
  const raw = await rawHistory(workflowId);
  expect(raw.length).toBeGreaterThan(500);
  expect(raw.includes(marker)).toBe(false);
  expect(raw.includes('binary/encrypted')).toBe(true);
  // The client with the key reads it back.
  const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
  const started = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads!;
  const [plain] = await codec.decode(started);
  expect(Buffer.from(plain!.data!).toString()).toContain(marker);
});

test('control: without the codec the same spec is stored in plaintext', async () => {
  const marker = `PLAIN-${randomUUID()}`;
  const workflowId = `plain-${randomUUID()}`;
  const plainClient = new Client({ connection: t.client.connection });
  await plainClient.workflow
    .execute('distillationWorkflow', { taskQueue: 'distillery', workflowId, args: [specWithSecret(marker)] })
    .catch(() => undefined);
  expect((await rawHistory(workflowId)).includes(marker)).toBe(true);
});

test('the codec server decodes for the Web UI, and keys rotate: old payloads stay readable', async () => {
  const [oldKey, newKey] = KEYS.split(',');
  const oldCodec = codecFromEnv({ DISTILLERY_CODEC_KEYS: oldKey })!;
  const rotated = codecFromEnv({ DISTILLERY_CODEC_KEYS: `${newKey},${oldKey}` })!;
  const [encrypted] = await oldCodec.encode([
    { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"x":1}') },
  ]);
  const server = await startCodecServer({ codec: rotated, token: TOKEN, allowOrigins: [UI_ORIGIN] });
  try {
    const body = {
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(encrypted!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
          ),
          data: Buffer.from(encrypted!.data!).toString('base64'),
        },
      ],
    };
    const res = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-namespace': 'default',
        authorization: `Bearer ${TOKEN}`,
        origin: UI_ORIGIN,
      },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    const out = (await res.json()) as { payloads: { data: string }[] };
    expect(Buffer.from(out.payloads[0]!.data, 'base64').toString()).toBe('{"x":1}');
  } finally {
    await server.close();
  }
  // A process without the key cannot read it, and says which key is missing.
  const stranger = codecFromEnv({ DISTILLERY_CODEC_KEYS: newKey })!;
  await expect(stranger.decode([encrypted!])).rejects.toThrow(/which this process does not hold/);
});

/** A POST through node:http (so an early 413 is read even while the body is still being sent). */
function post(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    // The server may close the connection after answering an oversize body: a write error then is expected.
    req.on('error', (err) =>
      /EPIPE|ECONNRESET/.test(String((err as NodeJS.ErrnoException).code)) ? undefined : reject(err),
    );
    req.end(body);
  });
}

describe('the codec server: bearer token, CORS for the configured Web UI origin only, a body limit', () => {
  let server: Awaited<ReturnType<typeof startCodecServer>>;
  let decoded = 0;
  let encrypted: string;
  beforeAll(async () => {
    const counting: AesGcmCodec = Object.assign(Object.create(codec) as AesGcmCodec, {
      decode: (p: Parameters<AesGcmCodec['decode']>[0]) => {
        decoded += 1;
        return codec.decode(p);
      },
    });
    server = await startCodecServer({
      codec: counting,
      token: TOKEN,
      allowOrigins: [UI_ORIGIN],
      maxBodyBytes: 64 * 1024,
    });
    const [e] = await codec.encode([
      { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"secret":"s3cret"}') },
    ]);
    encrypted = JSON.stringify({
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(e!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
          ),
          data: Buffer.from(e!.data!).toString('base64'),
        },
      ],
    });
  });
  afterAll(async () => server?.close());

  test('a request without the token, or with another, is refused (401) and nothing is decoded', async () => {
    const before = decoded;
    for (const auth of [{}, { authorization: 'Bearer not-the-token-at-all' }, { authorization: TOKEN }] as Record<
      string,
      string
    >[]) {
      const r = await post(`${server.url}/decode`, { origin: UI_ORIGIN, ...auth }, Buffer.from(encrypted));
      expect(r.status).toBe(401);
      expect(r.body).not.toContain(Buffer.from('s3cret').toString('base64'));
    }
    expect(decoded).toBe(before);
    const ok = await post(
      `${server.url}/decode`,
      { origin: UI_ORIGIN, authorization: `Bearer ${TOKEN}` },
      Buffer.from(encrypted),
    );
    expect(ok.status).toBe(200);
    expect(decoded).toBe(before + 1);
  });

  test('CORS headers go to the configured origin only; a preflight from elsewhere is refused', async () => {
    const pre = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI_ORIGIN, 'access-control-request-method': 'POST' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    const evil = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    // Even with the token, an answer to another origin carries no CORS header (a browser there cannot read it).
    const other = await post(
      `${server.url}/decode`,
      { origin: 'http://evil.example', authorization: `Bearer ${TOKEN}` },
      Buffer.from(encrypted),
    );
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    // '*' and short tokens are refused at start.
    await expect(startCodecServer({ codec, token: TOKEN, allowOrigins: ['*'] })).rejects.toThrow(/not "\*"/);
    await expect(startCodecServer({ codec, token: 'short', allowOrigins: [UI_ORIGIN] })).rejects.toThrow(
      /bearer token/,
    );
  });

  test('a body over the limit is refused (413) and not decoded', async () => {
    const before = decoded;
    const big = Buffer.from(JSON.stringify({ payloads: [{ metadata: {}, data: 'A'.repeat(200 * 1024) }] }));
    const r = await post(`${server.url}/decode`, { origin: UI_ORIGIN, authorization: `Bearer ${TOKEN}` }, big);
    expect(r.status).toBe(413);
    expect(decoded).toBe(before);
  });
});

describe('DISTILLERY_REQUIRE_ENCRYPTION=1', () => {
  const strictEnv = {
    DISTILLERY_CODEC_KEYS: KEYS,
    DISTILLERY_REQUIRE_ENCRYPTION: '1',
    DISTILLERY_WORKFLOW_QUEUE: 'strict',
    DISTILLERY_CPU_QUEUE: 'strict-cpu',
  };
  beforeAll(async () => {
    await t.startCpuWorker(strictEnv);
  });

  const strictSpec = (marker: string) => ({
    ...specWithSecret(marker),
    taskQueues: { workflow: 'strict', cpu: 'strict-cpu', gpu: 'strict-gpu' },
  });

  test('a worker refuses an unencrypted start: its workflow task fails naming the setting, no activity is scheduled', async () => {
    const marker = `PLAIN-${randomUUID()}`;
    const workflowId = `strict-plain-${randomUUID()}`;
    const plainClient = new Client({ connection: t.client.connection });
    const handle = await plainClient.workflow.start('distillationWorkflow', {
      taskQueue: 'strict',
      workflowId,
      args: [strictSpec(marker)],
    });
    try {
      let failure: temporal.api.failure.v1.IFailure | null | undefined;
      let events: temporal.api.history.v1.IHistoryEvent[] = [];
      for (
        const deadline = Date.now() + 60_000;
        Date.now() < deadline && !failure;
        await new Promise((r) => setTimeout(r, 200))
      ) {
        events = (await handle.fetchHistory()).events ?? [];
        failure = events.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes?.failure;
      }
      expect(failure).toBeTruthy();
      // The failure converter put the message in encoded attributes, encrypted with the workers' key.
      const [attrs] = await codec.decode([failure!.encodedAttributes!]);
      const message = (JSON.parse(Buffer.from(attrs!.data!).toString()) as { message: string }).message;
      expect(message).toMatch(/refused an unencrypted payload: DISTILLERY_REQUIRE_ENCRYPTION=1/);
      expect(events.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
      expect(
        events.some((e) => e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes),
      ).toBe(false);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });

  test('control: the same worker runs an encrypted start (it reaches prepare and fails on the missing dataset)', async () => {
    const marker = `ENC-${randomUUID()}`;
    const err = await t.client.workflow
      .execute('distillationWorkflow', {
        taskQueue: 'strict',
        workflowId: `strict-enc-${randomUUID()}`,
        args: [strictSpec(marker)],
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String(((err as WorkflowFailedError).cause?.cause as Error | undefined)?.message)).toMatch(
      new RegExp(`${marker}.jsonl does not exist`),
    );
  });

  test('without a codec key a process that requires encryption does not start', async () => {
    expect(() => codecFromEnv({ DISTILLERY_REQUIRE_ENCRYPTION: '1' })).toThrow(/no codec key is configured/);
    await expect(
      t.startCpuWorker({
        DISTILLERY_REQUIRE_ENCRYPTION: '1',
        DISTILLERY_CODEC_KEYS: '',
        DISTILLERY_WORKFLOW_QUEUE: 'strict-nokey',
        DISTILLERY_CPU_QUEUE: 'strict-nokey-cpu',
      }),
    ).rejects.toThrow(/no codec key is configured/);
    // A codec that requires encryption refuses a plain payload outright.
    const strict = codecFromEnv({ DISTILLERY_CODEC_KEYS: KEYS, DISTILLERY_REQUIRE_ENCRYPTION: '1' })!;
    await expect(
      strict.decode([{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{}') }]),
    ).rejects.toThrow(/refused an unencrypted payload/);
  });
});
