import type http from 'node:http';
import { randomBytes } from 'node:crypto';

/**
 * OpenAI's Files + Batch API, as far as a batch generation needs it, for the local teacher: upload a JSONL of
 * /v1/chat/completions requests, create a batch, poll it, download the output (and error) file. Processing is
 * in memory and starts after `processDelayMs`, so tests can kill a worker while a batch is "running".
 */
interface StoredFile {
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

export function createBatchApi(opts: { answer: (body: unknown) => Promise<Record<string, unknown>>; processDelayMs: number }) {
  const files = new Map<string, StoredFile>();
  const batches = new Map<string, Batch>();
  const now = () => Math.floor(Date.now() / 1000);
  const newId = (prefix: string) => `${prefix}-${randomBytes(10).toString('hex')}`;

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const fail = (res: http.ServerResponse, status: number, message: string) =>
    send(res, status, { error: { message, type: 'invalid_request_error', param: null, code: null } });

  async function readRequest(req: http.IncomingMessage): Promise<Request> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return new Request('http://local/', { method: 'POST', headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) });
  }

  async function process(batch: Batch): Promise<void> {
    batch.status = 'in_progress';
    const input = files.get(batch.input_file_id)!.content.split('\n').filter((l) => l.trim());
    const out: string[] = [];
    const errors: string[] = [];
    for (const line of input) {
      const { custom_id, body } = JSON.parse(line) as { custom_id: string; body: unknown };
      if (batches.get(batch.id)?.status === 'cancelled') return;
      try {
        const response = await opts.answer(body);
        out.push(JSON.stringify({ id: newId('batch_req'), custom_id, response: { status_code: 200, request_id: newId('req'), body: response }, error: null }));
        batch.request_counts.completed += 1;
      } catch (err) {
        errors.push(JSON.stringify({ id: newId('batch_req'), custom_id, response: null, error: { code: 'request_failed', message: (err as Error).message } }));
        batch.request_counts.failed += 1;
      }
    }
    const store = (content: string, filename: string) => {
      const f = { id: newId('file'), filename, purpose: 'batch_output', content, created_at: now() };
      files.set(f.id, f);
      return f.id;
    };
    batch.output_file_id = store(out.join('\n') + (out.length ? '\n' : ''), `${batch.id}_output.jsonl`);
    if (errors.length) batch.error_file_id = store(errors.join('\n') + '\n', `${batch.id}_error.jsonl`);
    batch.status = 'completed';
    batch.completed_at = now();
  }

  const fileObject = (f: StoredFile) => ({ id: f.id, object: 'file', bytes: Buffer.byteLength(f.content), created_at: f.created_at, filename: f.filename, purpose: f.purpose });

  /** Answers the request if it is a Files/Batch API call; false otherwise. */
  async function handle(method: string, path: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    if (path === '/v1/files' && method === 'POST') {
      const form = await (await readRequest(req)).formData();
      const file = form.get('file');
      if (!file || typeof file === 'string') {
        fail(res, 400, 'multipart field "file" is required');
        return true;
      }
      const f: StoredFile = { id: newId('file'), filename: file.name, purpose: String(form.get('purpose') ?? 'batch'), content: await file.text(), created_at: now() };
      files.set(f.id, f);
      send(res, 200, fileObject(f));
      return true;
    }
    const fileContent = /^\/v1\/files\/([^/]+)\/content$/.exec(path);
    if (fileContent && method === 'GET') {
      const f = files.get(fileContent[1]!);
      if (!f) fail(res, 404, `No such File object: ${fileContent[1]}`);
      else {
        res.writeHead(200, { 'content-type': 'application/jsonl' });
        res.end(f.content);
      }
      return true;
    }
    if (path === '/v1/batches' && method === 'POST') {
      const body = (await (await readRequest(req)).json()) as { input_file_id?: string; endpoint?: string; completion_window?: string; metadata?: Record<string, string> };
      if (!body.input_file_id || !files.has(body.input_file_id)) {
        fail(res, 400, `input_file_id ${body.input_file_id ?? '(missing)'} is not an uploaded file`);
        return true;
      }
      if (body.endpoint !== '/v1/chat/completions') {
        fail(res, 400, 'only endpoint /v1/chat/completions is supported');
        return true;
      }
      const total = files.get(body.input_file_id)!.content.split('\n').filter((l) => l.trim()).length;
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
      send(res, 200, batch);
      return true;
    }
    if (path === '/v1/batches' && method === 'GET') {
      const data = [...batches.values()].sort((a, b) => b.created_at - a.created_at);
      send(res, 200, { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false });
      return true;
    }
    const one = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    if (one) {
      const batch = batches.get(one[1]!);
      if (!batch) fail(res, 404, `No such Batch object: ${one[1]}`);
      else {
        if (one[2] && method === 'POST' && batch.status !== 'completed') batch.status = 'cancelled';
        send(res, 200, batch);
      }
      return true;
    }
    return false;
  }

  return { handle, created: () => batches.size };
}
