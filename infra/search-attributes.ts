import type { Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { DISTILLERY_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

/** For `temporal server start-dev --search-attribute NAME=Keyword`. */
export function devServerSearchAttributes(): Record<string, string> {
  return Object.fromEntries(DISTILLERY_SEARCH_ATTRIBUTES.map((k) => [k.name, 'Keyword']));
}

/**
 * Registers the project's search attributes in the namespace when they are missing (idempotent). A workflow that sets
 * an unregistered attribute fails its tasks, so workers do this before they poll. Needs operator rights; where the
 * worker has none, an administrator runs `temporal operator search-attribute create` once (infra/deploy/README.md).
 */
export async function ensureSearchAttributes(
  connection: Connection | NativeConnection,
  namespace: string,
): Promise<string[]> {
  const operator = connection.operatorService;
  const existing = await operator.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = DISTILLERY_SEARCH_ATTRIBUTES.filter((k) => !have.has(k.name));
  if (!missing.length) return [];
  try {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
      ),
    });
  } catch (err) {
    // Another worker starting at the same moment registered them first.
    if ((err as { code?: number }).code !== 6 /* ALREADY_EXISTS */) throw err;
  }
  return missing.map((k) => k.name);
}
