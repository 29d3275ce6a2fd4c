import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * The frontend and the Web UI have no authentication in the compose file: whoever reaches them can start runs (and so
 * choose the endpoints and files a worker uses). Every port the compose file publishes must therefore listen on the
 * loopback address by default, i.e. with no variable set; exposing one is a deliberate act (PUBLISH_ADDRESS).
 */
const composeFile = path.resolve(__dirname, '..', '..', 'infra', 'deploy', 'docker-compose.yml');

/** `${VAR:-default}` / `${VAR-default}` / `${VAR}` as compose expands them with no variable set. */
const withDefaults = (s: string) =>
  s.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, (_m, def: string | undefined) => def ?? '');

/** The host address a published port listens on, as compose reads its short or long syntax ('' = every interface). */
function hostAddress(port: unknown): string {
  if (typeof port === 'object' && port !== null)
    return withDefaults(String((port as { host_ip?: unknown }).host_ip ?? ''));
  const s = withDefaults(String(port)).replace(/\/(tcp|udp)$/, '');
  const ipv6 = /^\[([^\]]+)\]:/.exec(s);
  if (ipv6) return ipv6[1]!;
  const parts = s.split(':');
  return parts.length === 3 ? parts[0]! : '';
}

test('every port the compose file publishes listens on 127.0.0.1 unless the operator says otherwise', () => {
  const compose = parseYaml(readFileSync(composeFile, 'utf8')) as { services: Record<string, { ports?: unknown[] }> };
  const published = Object.entries(compose.services).flatMap(([service, s]) =>
    (s.ports ?? []).map((p) => ({ service, port: p, address: hostAddress(p) })),
  );
  // The UI and the frontend at least: a compose file that publishes neither would make this test vacuous.
  expect(published.map((p) => p.service)).toEqual(expect.arrayContaining(['temporal', 'temporal-ui']));
  const exposed = published.filter((p) => p.address !== '127.0.0.1' && p.address !== '::1');
  expect(exposed).toEqual([]);
});
