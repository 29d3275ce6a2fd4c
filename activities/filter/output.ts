/** SFT rows: OpenAI chat messages (what fineTune reads; TRL, LLaMA-Factory, axolotl) and ShareGPT on request. */

export interface SftRow {
  id: string;
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
  /** The mixture source of the row (runs with `datasets`). */
  source?: string;
}

export interface ShareGptRow {
  id: string;
  conversations: { from: 'system' | 'human' | 'gpt'; value: string }[];
}

export function toMessages(id: string, prompt: string, answer: string): SftRow {
  return {
    id,
    messages: [
      { role: 'user', content: prompt },
      { role: 'assistant', content: answer },
    ],
  };
}

export function toShareGpt(row: SftRow): ShareGptRow {
  const from = { system: 'system', user: 'human', assistant: 'gpt' } as const;
  return { id: row.id, conversations: row.messages.map((m) => ({ from: from[m.role], value: m.content })) };
}
