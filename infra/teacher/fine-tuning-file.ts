/** As the OpenAI API: fewer examples than this fail validation. */
const MIN_EXAMPLES = 10;

/** The checks OpenAI runs on a chat fine-tuning file, as far as this trainer needs them. */
export function validateTrainingFile(content: string): string | null {
  let examples = 0;
  const lines = content.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.trim()) continue;
    let row: unknown;
    try {
      row = JSON.parse(lines[i]!);
    } catch {
      return `Invalid file format. Line ${i + 1}: not valid JSON.`;
    }
    const messages = (row as { messages?: unknown } | null)?.messages;
    if (!Array.isArray(messages) || messages.length === 0)
      return `Invalid file format. Line ${i + 1}: each example needs a non-empty "messages" array.`;
    for (const m of messages as { role?: unknown; content?: unknown }[]) {
      if (!m || typeof m.content !== 'string' || !['system', 'user', 'assistant'].includes(String(m.role))) {
        return `Invalid file format. Line ${i + 1}: each message needs a role (system, user, assistant) and string content.`;
      }
    }
    const roles = (messages as { role: string }[]).map((m) => m.role);
    if (roles.lastIndexOf('assistant') < roles.lastIndexOf('user') || !roles.includes('user')) {
      return `Invalid file format. Line ${i + 1}: an example needs a user message followed by an assistant message.`;
    }
    examples++;
  }
  if (examples < MIN_EXAMPLES)
    return `Training file has ${examples} example(s), but must have at least ${MIN_EXAMPLES} examples.`;
  return null;
}
