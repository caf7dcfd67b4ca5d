/**
 * Example Tern plugin: ask an HTTP service whether a client may connect.
 *
 *   [plugins.http_auth]
 *   module = "./examples/plugins/http-auth.ts"    # a .ts module needs Tern run under tsx; compile it for production
 *   options = { url = "http://127.0.0.1:8000/mqtt/auth", timeout_ms = 2000, on_error = "deny" }
 *
 * For every CONNECT with a username/password (not for MQTT 5 enhanced
 * authentication, which it leaves to other hooks) it POSTs JSON
 *
 *   { "clientId", "username", "password", "address", "listener", "transport", "protocolLevel" }
 *
 * (`password` as UTF-8 text, null when absent) and maps the answer:
 * - a JSON body `{ "result": "allow" | "deny" | "defer" }` decides;
 * - otherwise the status: 2xx allow, 401/403 deny, 404 defer (the service
 *   does not know this client: let the next hook, e.g. the password file, decide);
 * - any other status, a timeout or a network error: `on_error` ("deny" by
 *   default, or "defer").
 */
import type { PluginApi, TernPlugin } from '../../src/hooks/plugin.js';
import type { AuthenticateRequest, AuthenticateResult, Decision } from '../../src/hooks/types.js';

export interface HttpAuthOptions {
  /** The endpoint to POST to. */
  url: string;
  /** Per request, milliseconds (default 2000). */
  timeoutMs?: number;
  /** Answer when the service fails or times out (default "deny"). */
  onError?: 'deny' | 'defer';
}

const DECISIONS: ReadonlySet<string> = new Set(['allow', 'deny', 'defer']);

async function ask(options: Required<HttpAuthOptions>, request: AuthenticateRequest, api: PluginApi): Promise<AuthenticateResult> {
  const body = JSON.stringify({
    clientId: request.clientId,
    username: request.username ?? null,
    password: request.password === undefined ? null : request.password.toString('utf8'),
    address: request.info.remoteAddress,
    listener: request.info.listener,
    transport: request.info.transport ?? null,
    protocolLevel: request.protocolLevel,
  });
  let response: Response;
  try {
    response = await fetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    api.log.warn({ err: (err as Error).message, url: options.url }, 'auth service unreachable');
    return options.onError;
  }
  const text = await response.text().catch(() => '');
  let result: unknown;
  try {
    result = (JSON.parse(text) as { result?: unknown } | null)?.result;
  } catch {
    result = undefined;
  }
  if (typeof result === 'string' && DECISIONS.has(result)) return result as Decision;
  if (response.status >= 200 && response.status < 300) return 'allow';
  if (response.status === 401 || response.status === 403) return 'deny';
  if (response.status === 404) return 'defer';
  api.log.warn({ status: response.status, url: options.url }, 'unexpected auth service answer');
  return options.onError;
}

export const plugin: TernPlugin<HttpAuthOptions> = {
  name: 'http-auth',
  apiVersion: 1,
  register(api, raw) {
    if (typeof raw.url !== 'string' || !/^https?:\/\//.test(raw.url)) throw new TypeError('options.url must be an http(s) URL');
    const options: Required<HttpAuthOptions> = {
      url: raw.url,
      timeoutMs: raw.timeoutMs ?? 2000,
      onError: raw.onError ?? 'deny',
    };
    if (options.onError !== 'deny' && options.onError !== 'defer') throw new TypeError('options.onError must be "deny" or "defer"');
    api.addHook('authenticate', (request) => (request.method !== undefined ? 'defer' : ask(options, request, api)));
  },
};
