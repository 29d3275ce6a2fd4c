import { z } from 'zod';

/**
 * Which of a worker's environment variables a run spec may name as an API key, and to which endpoint hosts each may
 * be sent. The spec is written by whoever can start a workflow; the policy is written by whoever runs the worker.
 * Pure: no I/O and no Node built-ins, so the workflow code may import it as well.
 */

export const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The worker's own secrets: no policy may hand them to a run spec. */
export const NEVER_KEYS: readonly string[] = [
  'DISTILLERY_CODEC_KEYS',
  'DISTILLERY_CODEC_KEY_FILE',
  'DISTILLERY_CODEC_SERVER_TOKEN',
];

/** Where the policy is configured, for messages that tell a person what to change. */
export const KEY_POLICY_SETTING = 'DISTILLERY_KEY_POLICY (or "keys" in DISTILLERY_POLICY_FILE)';

/**
 * A host a key may go to: `api.openai.com` (any port), `api.openai.com:443`, `*.openai.azure.com` (any subdomain),
 * `[::1]:8400`, or with a scheme, `https://api.openai.com` (then only over that scheme).
 */
const hostPattern = z
  .string()
  .min(1)
  .refine((p) => parseHostPattern(p) !== null, {
    message: 'must be a host, host:port, *.domain or scheme://host[:port]',
  });

export const KeyPolicySchema = z.record(
  z
    .string()
    .regex(ENV_VAR_NAME, 'must be an environment variable name')
    .refine((name) => !NEVER_KEYS.includes(name), {
      message: 'is a worker secret that no run spec may use as an API key',
    }),
  z.array(hostPattern).min(1, 'must list at least one host the key may be sent to'),
);

/** Variable name → the hosts its value may be sent to. */
export type KeyPolicy = Readonly<Record<string, readonly string[]>>;

interface HostPattern {
  protocol?: string;
  /** Lower-case hostname; IPv6 in brackets as URL writes it. */
  hostname: string;
  subdomains: boolean;
  port?: string;
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

export function parseHostPattern(pattern: string): HostPattern | null {
  const p = pattern.trim();
  let protocol: string | undefined;
  let rest = p;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(p);
  if (scheme) {
    protocol = `${scheme[1]!.toLowerCase()}:`;
    rest = p.slice(scheme[0].length).replace(/\/+$/, '');
  }
  const subdomains = rest.startsWith('*.');
  if (subdomains) rest = rest.slice(2);
  if (!rest || /[/?#@\s*]/.test(rest)) return null;
  let url: URL;
  try {
    url = new URL(`http://${rest}`);
  } catch {
    return null;
  }
  // URL drops the default port of the scheme it was given: keep the one the pattern wrote
  const explicitPort = /:(\d+)$/.exec(rest)?.[1];
  return { protocol, hostname: url.hostname.toLowerCase(), subdomains, port: explicitPort };
}

export function hostMatches(pattern: string, target: URL): boolean {
  const h = parseHostPattern(pattern);
  if (!h) return false;
  if (h.protocol && h.protocol !== target.protocol) return false;
  const host = target.hostname.toLowerCase();
  if (h.subdomains ? !host.endsWith(`.${h.hostname}`) : host !== h.hostname) return false;
  if (h.port === undefined) return true;
  return (target.port || DEFAULT_PORTS[target.protocol] || '') === h.port;
}

/** One place a run spec asks the worker to send a key: the spec field, the variable it names, the endpoint. */
export interface KeyUse {
  /** The spec field naming the variable, e.g. teacher.apiKeyEnv. */
  field: string;
  envName: string;
  baseURL: string;
}

export interface PolicyRefusal {
  /** The ApplicationFailure type. */
  type: 'ApiKeyNotAllowed' | 'ApiKeyHostNotAllowed' | 'ApiKeyNotSet' | 'PathOutsideRoots';
  field: string;
  /** The rule that refused it, in words. */
  rule: string;
  message: string;
}

export const KEY_RULES = {
  listed: `a run spec may name only the key variables listed in the worker's key policy, ${KEY_POLICY_SETTING}`,
  bound: "a key is sent only to the hosts the worker's key policy binds it to",
  set: 'a key variable a run spec names must be set on the worker',
} as const;

/** Why the policy refuses this use, or null when the key may be sent to that endpoint. */
export function checkKeyUse(policy: KeyPolicy, use: KeyUse): PolicyRefusal | null {
  const hosts = Object.prototype.hasOwnProperty.call(policy, use.envName) ? policy[use.envName] : undefined;
  if (!hosts || NEVER_KEYS.includes(use.envName)) {
    const listed = Object.keys(policy).filter((k) => !NEVER_KEYS.includes(k));
    return {
      type: 'ApiKeyNotAllowed',
      field: use.field,
      rule: KEY_RULES.listed,
      message:
        `${use.field} names the environment variable ${use.envName}, which the worker's key policy does not list: refused before any request ` +
        `(rule: ${KEY_RULES.listed}; listed now: ${listed.length ? listed.join(', ') : 'none'}).`,
    };
  }
  let url: URL;
  try {
    url = new URL(use.baseURL);
  } catch {
    return {
      type: 'ApiKeyHostNotAllowed',
      field: use.field,
      rule: KEY_RULES.bound,
      message: `${use.field}: the endpoint ${use.baseURL} is not a URL; no key is sent to it.`,
    };
  }
  if (!hosts.some((h) => hostMatches(h, url))) {
    return {
      type: 'ApiKeyHostNotAllowed',
      field: use.field,
      rule: KEY_RULES.bound,
      message:
        `${use.field} names ${use.envName}, which the worker's key policy binds to ${hosts.join(', ')}, but the endpoint is ${url.protocol}//${url.host}: ` +
        `refused before any request (rule: ${KEY_RULES.bound}; set in ${KEY_POLICY_SETTING}).`,
    };
  }
  return null;
}

/** The policy with one more grant (the CLI's `verify --judge-key-env`, where the person at the terminal owns the key). */
export function withKeyGrant(policy: KeyPolicy, envName: string, baseURL: string): KeyPolicy {
  const url = new URL(baseURL);
  const host = `${url.protocol}//${url.host}`;
  return { ...policy, [envName]: [...(policy[envName] ?? []), host] };
}
