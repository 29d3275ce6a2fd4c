import { randomUUID } from 'node:crypto';
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
    // A dataset path that does not exist: the run fails at its first activity, after its input is in history, with
    // an error that quotes the path (and so the marker): failure messages must be encrypted too.
    dataset: { source: { type: 'jsonl', path: `/nonexistent/${marker}.jsonl` } },
    teacher: { baseURL: 'http://127.0.0.1:9/v1', model: 'm', systemPrompt: `You are ${marker}.` },
  };
}

async function rawHistory(workflowId: string): Promise<Buffer> {
  const res = await t.client.connection.workflowService.getWorkflowExecutionHistory({ namespace: 'default', execution: { workflowId } });
  return Buffer.from(temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse.encode(res).finish());
}

test('encrypted run: the stored history holds no plaintext of the spec', async () => {
  const marker = `SECRET-${randomUUID()}`;
  const workflowId = `codec-${randomUUID()}`;
  const err = await t.client.workflow.execute('distillationWorkflow', { taskQueue: 'distillery', workflowId, args: [specWithSecret(marker)] }).catch((e) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError); // it ran: the worker decrypted the input and failed on the dataset
  // The client with the key reads the failure message back; the server holds it only encrypted.
  expect(String(((err as WorkflowFailedError).cause?.cause as Error | undefined)?.message)).toMatch(new RegExp(`${marker}.jsonl does not exist`));
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
  await plainClient.workflow.execute('distillationWorkflow', { taskQueue: 'distillery', workflowId, args: [specWithSecret(marker)] }).catch(() => undefined);
  expect((await rawHistory(workflowId)).includes(marker)).toBe(true);
});

test('the codec server decodes for the Web UI, and keys rotate: old payloads stay readable', async () => {
  const [oldKey, newKey] = KEYS.split(',');
  const oldCodec = codecFromEnv({ DISTILLERY_CODEC_KEYS: oldKey })!;
  const rotated = codecFromEnv({ DISTILLERY_CODEC_KEYS: `${newKey},${oldKey}` })!;
  const [encrypted] = await oldCodec.encode([{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"x":1}') }]);
  const server = await startCodecServer({ codec: rotated });
  try {
    const body = { payloads: [{ metadata: Object.fromEntries(Object.entries(encrypted!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(encrypted!.data!).toString('base64') }] };
    const res = await fetch(`${server.url}/decode`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default' }, body: JSON.stringify(body) });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const out = (await res.json()) as { payloads: { data: string }[] };
    expect(Buffer.from(out.payloads[0]!.data, 'base64').toString()).toBe('{"x":1}');
  } finally {
    await server.close();
  }
  // A process without the key cannot read it, and says which key is missing.
  const stranger = codecFromEnv({ DISTILLERY_CODEC_KEYS: newKey })!;
  await expect(stranger.decode([encrypted!])).rejects.toThrow(/which this process does not hold/);
});
