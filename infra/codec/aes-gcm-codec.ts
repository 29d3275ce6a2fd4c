import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/**
 * Encrypts every workflow and activity payload with AES-256-GCM before it leaves the process, so the server's
 * history holds ciphertext only. Each payload names its key id, so keys can be rotated: new payloads use the
 * current key, old ones are still read with theirs.
 *
 * Keys: DISTILLERY_CODEC_KEYS="id1:<base64 32 bytes>,id2:…" (the first is current), or DISTILLERY_CODEC_KEY_FILE
 * pointing to a file with the same entries, one per line.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A payload that arrived unencrypted where DISTILLERY_REQUIRE_ENCRYPTION=1 says none may. */
export class UnencryptedPayloadError extends Error {
  override name = 'UnencryptedPayloadError';
}

/** DISTILLERY_REQUIRE_ENCRYPTION=1: this process reads no payload that was not encrypted (and will not run without keys). */
export function encryptionRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes'].includes((env.DISTILLERY_REQUIRE_ENCRYPTION ?? '').trim().toLowerCase());
}

export class AesGcmCodec implements PayloadCodec {
  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly currentKeyId: string,
    private readonly opts: { requireEncryption?: boolean } = {},
  ) {
    for (const [id, key] of keys)
      if (key.length !== 32) throw new Error(`codec key ${id} must be 32 bytes (AES-256), got ${key.length}`);
    if (!keys.has(currentKeyId)) throw new Error(`codec: no key with id ${currentKeyId}`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentKeyId)!;
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID]: Buffer.from(this.currentKeyId) },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCRYPTED_ENCODING) {
        // Whoever can reach the server could otherwise start runs (or send signals) in plaintext, bypassing the keys.
        if (this.opts.requireEncryption) {
          throw new UnencryptedPayloadError(
            'refused an unencrypted payload: DISTILLERY_REQUIRE_ENCRYPTION=1 on this process. Start workflows and send signals, queries and updates through a client that has DISTILLERY_CODEC_KEYS (or the Web UI with the codec server).',
          );
        }
        return payload;
      }
      const keyId = Buffer.from(payload.metadata?.[KEY_ID] ?? []).toString();
      const key = this.keys.get(keyId);
      if (!key) throw new Error(`codec: payload encrypted with key "${keyId}", which this process does not hold`);
      const data = Buffer.from(payload.data ?? []);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

/** The codec configured by the environment, or undefined when no key is configured (payloads stay plain). */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const spec =
    env.DISTILLERY_CODEC_KEYS ||
    (env.DISTILLERY_CODEC_KEY_FILE ? readFileSync(env.DISTILLERY_CODEC_KEY_FILE, 'utf8') : undefined);
  const required = encryptionRequired(env);
  if (!spec?.trim()) {
    if (required)
      throw new Error(
        'DISTILLERY_REQUIRE_ENCRYPTION=1 but no codec key is configured: set DISTILLERY_CODEC_KEYS or DISTILLERY_CODEC_KEY_FILE (`npx distill codec-key` makes one)',
      );
    return undefined;
  }
  const entries = spec
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => {
      const i = e.indexOf(':');
      if (i <= 0) throw new Error('codec keys must be "id:<base64 key>" entries');
      return [e.slice(0, i), Buffer.from(e.slice(i + 1), 'base64')] as const;
    });
  return new AesGcmCodec(new Map(entries), entries[0]![0], { requireEncryption: required });
}

/** A new random key entry for DISTILLERY_CODEC_KEYS (`distill codec-key`). */
export function newKeyEntry(): string {
  const key = randomBytes(32);
  return `${createHash('sha256').update(key).digest('hex').slice(0, 8)}:${key.toString('base64')}`;
}

/**
 * The data converter for clients and workers: with the codec when keys are configured. Failure messages stay
 * plaintext (encrypting them needs a failure converter inside the prebuilt workflow bundle; not done yet).
 */
/** The failure converter module (also bundled into the workflow code, see workers/build-bundle.ts). */
export const failureConverterPath = require.resolve('./failure-converter');

/** Workers' and clients' data converter: failures always in encoded attributes; payloads encrypted when keys are set. */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter {
  const codec = codecFromEnv(env);
  return { failureConverterPath, ...(codec ? { payloadCodecs: [codec] } : {}) };
}
