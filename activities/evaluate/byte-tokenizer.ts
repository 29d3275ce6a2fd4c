/**
 * The foundation student's tokenizer (infra/trainer/byte_tokenizer.py): UTF-8 bytes are ids 0..255, then BOS, EOS,
 * PAD. The chat template must match the trainer's byte for byte, or the student is asked in a format it never saw.
 */
export const BOS = 256;
export const EOS = 257;
export const PAD = 258;
export const VOCAB = 259;

export function encodePrompt(prompt: string, system?: string): number[] {
  const text = `User: ${system ? `${system}\n` : ''}${prompt}\nAssistant: `;
  return [BOS, ...Buffer.from(text, 'utf8')];
}

export function decode(ids: readonly number[]): string {
  const bytes: number[] = [];
  for (const id of ids) {
    if (id === EOS) break;
    if (id < 256) bytes.push(id);
  }
  return Buffer.from(bytes).toString('utf8');
}
