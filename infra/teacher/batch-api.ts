import type http from 'node:http';
import { randomBytes } from 'node:crypto';
import { HttpError, sendError, sendJson } from './http-common';

/**
 * OpenAI's Files + Batch API, as far as a batch generation needs it, for the local teacher: upload a JSONL of
 * /v1/chat/completions requests, create a batch, poll it, download the output (and error) file. Processing is
 * in memory and starts after `processDelayMs`, so tests can kill a worker while a batch is "running".
 */
export interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  content: string;
  created_at: number;
}

interface Batch {
  id: string;
  object: 'batch';
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  status: 'validating' | 'in_progress' | 'completed' | 'failed' | 'cancelled';
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  completed_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
  errors: unknown;
}

const now = () => Math.floor(Date.now() / 1000);
const newId = (prefix: string) => `${prefix}-${randomBytes(10).toString('hex')}`;

/** A multipart or JSON body, parsed by undici's Request (the parser fetch itself uses). */
export async function readRequest(req: http.IncomingMessage): Promise<Request> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new Request('http://local/', {
    method: 'POST',
    headers: req.headers as Record<string, string>,
    body: Buffer.concat(chunks),
  });
}

const fail = (res: http.ServerResponse, status: number, message: string, param: string | null = null) =>
  sendError(res, new HttpError(status, message, 'invalid_request_error', param));

export type FileStore = ReturnType<typeof createFileStore>;

/**
 * The Files API (upload, list, retrieve, content), one store per server: the Batch API reads request files from it
 * and writes output files to it; the fine-tuning API reads training files from it and writes result files to it.
 */
export function createFileStore() {
  const files = new Map<string, StoredFile>();

  const fileObject = (f: StoredFile) => ({
    id: f.id,
    object: 'file',
    bytes: Buffer.byteLength(f.content),
    created_at: f.created_at,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
  });

  function add(content: string, filename: string, purpose: string): StoredFile {
    const f: StoredFile = { id: newId('file'), filename, purpose, content, created_at: now() };
    files.set(f.id, f);
    return f;
  }

  /** Answers the request if it is a Files API call; false otherwise. */
  async function handle(
    method: string,
    path: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<boolean> {
    if (path === '/v1/files' && method === 'POST') {
      const form = await (await readRequest(req)).formData();
      const file = form.get('file');
      if (!file || typeof file === 'string') {
        fail(res, 400, 'multipart field "file" is required', 'file');
        return true;
      }
      sendJson(res, 200, fileObject(add(await file.text(), file.name, String(form.get('purpose') ?? 'batch'))));
      return true;
    }
    if (path === '/v1/files' && method === 'GET') {
      const q = new URL(req.url ?? '/', 'http://local').searchParams;
      const purpose = q.get('purpose');
      // Insertion order is upload order, a finer clock than created_at's seconds; newest first unless order=asc.
      let all = [...files.values()].filter((f) => !purpose || f.purpose === purpose);
      if (q.get('order') !== 'asc') all.reverse();
      const after = q.get('after');
      if (after) all = all.slice(all.findIndex((f) => f.id === after) + 1);
      const limit = Math.min(10_000, Math.max(1, Number(q.get('limit')) || 10_000));
      const data = all.slice(0, limit).map(fileObject);
      sendJson(res, 200, {
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: all.length > limit,
      });
      return true;
    }
    const one = /^\/v1\/files\/([^/]+)(\/content)?$/.exec(path);
    if (one && method === 'GET') {
      const f = files.get(one[1]!);
      if (!f) fail(res, 404, `No such File object: ${one[1]}`, 'id');
      else if (one[2]) {
        res.writeHead(200, { 'content-type': 'application/jsonl' });
        res.end(f.content);
      } else sendJson(res, 200, fileObject(f));
      return true;
    }
    return false;
  }

  return { handle, add, get: (id: string) => files.get(id) };
}

export function createBatchApi(opts: {
  answer: (body: unknown) => Promise<Record<string, unknown>>;
  processDelayMs: number;
  files?: FileStore;
}) {
  const files = opts.files ?? createFileStore();
  const batches = new Map<string, Batch>();

  async function process(batch: Batch): Promise<void> {
    batch.status = 'in_progress';
    const input = files
      .get(batch.input_file_id)!
      .content.split('\n')
      .filter((l) => l.trim());
    const out: string[] = [];
    const errors: string[] = [];
    for (const line of input) {
      const { custom_id, body } = JSON.parse(line) as { custom_id: string; body: unknown };
      if (batches.get(batch.id)?.status === 'cancelled') return;
      try {
        const response = await opts.answer(body);
        out.push(
          JSON.stringify({
            id: newId('batch_req'),
            custom_id,
            response: { status_code: 200, request_id: newId('req'), body: response },
            error: null,
          }),
        );
        batch.request_counts.completed += 1;
      } catch (err) {
        errors.push(
          JSON.stringify({
            id: newId('batch_req'),
            custom_id,
            response: null,
            error: { code: 'request_failed', message: (err as Error).message },
          }),
        );
        batch.request_counts.failed += 1;
      }
    }
    batch.output_file_id = files.add(
      out.join('\n') + (out.length ? '\n' : ''),
      `${batch.id}_output.jsonl`,
      'batch_output',
    ).id;
    if (errors.length)
      batch.error_file_id = files.add(errors.join('\n') + '\n', `${batch.id}_error.jsonl`, 'batch_output').id;
    batch.status = 'completed';
    batch.completed_at = now();
  }

  /** Answers the request if it is a Files/Batch API call; false otherwise. */
  async function handle(
    method: string,
    path: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<boolean> {
    if (await files.handle(method, path, req, res)) return true;
    if (path === '/v1/batches' && method === 'POST') {
      const body = (await (await readRequest(req)).json()) as {
        input_file_id?: string;
        endpoint?: string;
        completion_window?: string;
        metadata?: Record<string, string>;
      };
      if (!body.input_file_id || !files.get(body.input_file_id)) {
        fail(res, 400, `input_file_id ${body.input_file_id ?? '(missing)'} is not an uploaded file`, 'input_file_id');
        return true;
      }
      if (body.endpoint !== '/v1/chat/completions') {
        fail(res, 400, 'only endpoint /v1/chat/completions is supported', 'endpoint');
        return true;
      }
      const total = files
        .get(body.input_file_id)!
        .content.split('\n')
        .filter((l) => l.trim()).length;
      const batch: Batch = {
        id: newId('batch'),
        object: 'batch',
        endpoint: body.endpoint,
        input_file_id: body.input_file_id,
        completion_window: body.completion_window ?? '24h',
        status: 'validating',
        output_file_id: null,
        error_file_id: null,
        created_at: now(),
        completed_at: null,
        request_counts: { total, completed: 0, failed: 0 },
        metadata: body.metadata ?? null,
        errors: null,
      };
      batches.set(batch.id, batch);
      setTimeout(() => void process(batch), opts.processDelayMs).unref();
      sendJson(res, 200, batch);
      return true;
    }
    if (path === '/v1/batches' && method === 'GET') {
      const data = [...batches.values()].sort((a, b) => b.created_at - a.created_at);
      sendJson(res, 200, {
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: false,
      });
      return true;
    }
    const one = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    if (one) {
      const batch = batches.get(one[1]!);
      if (!batch) fail(res, 404, `No such Batch object: ${one[1]}`);
      else {
        if (one[2] && method === 'POST' && batch.status !== 'completed') batch.status = 'cancelled';
        sendJson(res, 200, batch);
      }
      return true;
    }
    return false;
  }

  return { handle, created: () => batches.size };
}
