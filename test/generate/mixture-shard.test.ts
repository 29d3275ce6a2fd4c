import * as http from 'node:http';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { startTeacherServer } from '../../infra/teacher/server';
import { generateShard } from '../../activities/generate/generate-shard';
import { layout } from '../../activities/artifacts/layout';
import { writeJsonAtomic, writeJsonlAtomic } from '../../activities/artifacts/store';
import { sourcesFileOf } from '../../activities/dataset/mixture';
import { shardInput, shardRows } from '../helpers/shard-fixture';

/**
 * Generation of a mixture's shard: each source with its own sampling and system prompt, and a source that reuses the
 * responses in its data without a request. A capture proxy (a test double that forwards to the real local teacher
 * and records each request body) shows what reached the teacher.
 */
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
let proxy: http.Server;
let proxyUrl: string;
const bodies: { messages: { role: string; content: string }[]; n: number; temperature: number }[] = [];

beforeAll(async () => {
  teacher = await startTeacherServer({ port: 0 });
  proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (body) bodies.push(JSON.parse(body));
      const target = new URL(req.url!, teacher.url.replace(/\/v1\/?$/, '/'));
      void fetch(target, {
        method: req.method,
        headers: { 'content-type': 'application/json' },
        body: body || undefined,
      }).then(async (r) => {
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await r.arrayBuffer()));
      });
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await new Promise((r) => proxy.close(r));
  await teacher.close();
});

test('per-source sampling, system prompt and existing responses; each source its own config hash', async () => {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'mix-shard-'));
  const sources = [
    {
      name: 'math',
      kind: 'reasoning',
      verifier: 'math',
      think: 'required',
      responses: 'teacher',
      prepare: { in: 2, kept: 2, quarantined: 0 },
    },
    {
      name: 'words',
      kind: 'non-reasoning',
      verifier: 'exact',
      think: 'none',
      responses: 'teacher',
      systemPrompt: 'Answer directly.',
      sampling: { n: 1, temperature: 0 },
      prepare: { in: 2, kept: 2, quarantined: 0 },
    },
    {
      name: 'chat',
      kind: 'non-reasoning',
      verifier: 'none',
      think: 'none',
      responses: 'existing',
      prepare: { in: 1, kept: 1, quarantined: 0 },
    },
  ];
  await writeJsonAtomic(sourcesFileOf(runDir), { sources, mixing: { seed: 0 } });
  await writeJsonlAtomic(layout.shardPrompts(runDir, 0), [
    { id: 'math/a', prompt: 'Compute 12+30.', answer: '42', source: 'math', task: 'math' },
    { id: 'words/b', prompt: 'Write 42 in words.', answer: 'forty-two', source: 'words', task: 'exact' },
    { id: 'chat/c', prompt: 'Say hi.', answer: 'hi', source: 'chat', task: 'none', response: 'hi there' },
    { id: 'math/d', prompt: 'Compute 11+11.', answer: '22', source: 'math', task: 'math' },
    { id: 'words/e', prompt: 'Write 7 in words.', answer: 'seven', source: 'words', task: 'exact' },
  ]);
  const r = await generateShard(
    shardInput(runDir, { baseURL: proxyUrl, systemPrompt: 'Think step by step.' }, { n: 2 }),
  );
  const rows = await shardRows(runDir);
  const per = (p: string) => rows.filter((s) => s.promptId === p);
  expect([per('math/a').length, per('words/b').length, per('chat/c').length]).toEqual([2, 1, 1]);
  expect(r).toMatchObject({ prompts: 5, samples: 2 + 1 + 1 + 2 + 1, requests: 4 });
  expect(per('words/b')[0]!.sampling.temperature).toBe(0);
  expect(per('words/b')[0]!.content).toBe('forty-two');
  expect(per('chat/c')[0]).toMatchObject({ content: 'hi there', source: 'chat', teacher: { model: 'existing' } });
  expect(new Set(rows.map((s) => s.configHash)).size).toBe(3);
  // What reached the teacher: the words prompts with their own system prompt and sampling, never the chat prompt.
  const sent = bodies.map((b) => ({
    system: b.messages.find((m) => m.role === 'system')?.content,
    user: b.messages.find((m) => m.role === 'user')?.content,
    n: b.n,
    temperature: b.temperature,
  }));
  expect(
    sent
      .filter((b) => b.user?.startsWith('Write'))
      .every((b) => b.system === 'Answer directly.' && b.n === 1 && b.temperature === 0),
  ).toBe(true);
  expect(
    sent.filter((b) => b.user?.startsWith('Compute')).every((b) => b.system === 'Think step by step.' && b.n === 2),
  ).toBe(true);
  expect(sent.some((b) => b.user === 'Say hi.')).toBe(false);
  expect(sent).toHaveLength(4);
});
