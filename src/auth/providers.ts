/**
 * The built-in security providers, registered as ordinary hooks after the
 * plugins' (so a plugin may decide first, and these decide when every
 * plugin defers):
 *
 * authenticate (always registered):
 * - an enhanced-auth request (MQTT 5 Authentication Method) -> defer: only
 *   plugins implement methods, so an unhandled one ends in 0x8C;
 * - a verified TLS client certificate used as username
 *   (`use_identity_as_username`) -> allow: the certificate is the credential;
 * - no username -> `auth.allow_anonymous` (true, false, or "loopback": only
 *   on listeners bound to a loopback address) -> allow, else deny 0x87;
 * - a username with `auth.password_file` -> the file decides (0x86 on a
 *   wrong password or unknown user);
 * - a username without a password file -> same rule as anonymous: the name
 *   is an unverified label, so it cannot open what anonymous cannot.
 *
 * authorizePublish / authorizeSubscribe / authorizeRead (only with
 * `auth.acl_file`): the ACL decides (allow or deny, never defer).
 *
 * Both files are re-read on reload(); a file that fails to load or parse
 * keeps the previous rules (logged), and a good one replaces them in one
 * assignment, so a check never sees half a file.
 */
import { ReasonCode } from '../codec/constants.js';
import type { AuthConfig } from '../config/schema.js';
import type { HookRegistry } from '../hooks/registry.js';
import type { AuthenticateRequest, AuthenticateResult, DecisionResult, HookClient, HookMessage } from '../hooks/types.js';
import type { Logger } from '../observability/logger.js';
import { Acl } from './acl.js';
import { PasswordFile } from './password-file.js';

const DENY_ANONYMOUS: AuthenticateResult = Object.freeze({
  decision: 'deny',
  reasonCode: ReasonCode.NOT_AUTHORIZED,
  reason: 'anonymous clients are not allowed on this listener',
});
const DENY_UNVERIFIED: AuthenticateResult = Object.freeze({
  decision: 'deny',
  reasonCode: ReasonCode.NOT_AUTHORIZED,
  reason: 'no password_file to check the username against, and anonymous clients are not allowed on this listener',
});
const DENY_PASSWORD: AuthenticateResult = Object.freeze({
  decision: 'deny',
  reasonCode: ReasonCode.BAD_USER_NAME_OR_PASSWORD,
  reason: 'bad username or password',
});
const DENY_ACL: DecisionResult = Object.freeze({ decision: 'deny', reasonCode: ReasonCode.NOT_AUTHORIZED, reason: 'denied by the ACL' });

export class BuiltinAuth {
  readonly #config: AuthConfig;
  readonly #log: Logger | undefined;
  #passwords: PasswordFile | null = null;
  #acl: Acl | null = null;

  private constructor(config: AuthConfig, log: Logger | undefined) {
    this.#config = config;
    this.#log = log;
  }

  /** Load the configured files; a broken file is an error at startup (ERR_AUTH_PASSWORD_FILE / ERR_AUTH_ACL_FILE). */
  static async create(config: AuthConfig, log?: Logger): Promise<BuiltinAuth> {
    const auth = new BuiltinAuth(config, log);
    if (config.passwordFile !== '') auth.#passwords = await PasswordFile.load(config.passwordFile);
    if (config.aclFile !== '') auth.#acl = await Acl.load(config.aclFile);
    return auth;
  }

  /**
   * Re-read both files. Each file is swapped only when it loaded cleanly;
   * rejects with the first error after trying both.
   */
  async reload(): Promise<void> {
    const { passwordFile, aclFile } = this.#config;
    const [passwords, acl] = await Promise.allSettled([
      passwordFile === '' ? null : PasswordFile.load(passwordFile),
      aclFile === '' ? null : Acl.load(aclFile),
    ]);
    let firstError: unknown;
    if (passwords.status === 'fulfilled') this.#passwords = passwords.value;
    else {
      firstError = passwords.reason;
      this.#log?.error({ err: passwords.reason, file: passwordFile }, 'password file not reloaded; keeping the previous one');
    }
    if (acl.status === 'fulfilled') this.#acl = acl.value;
    else {
      firstError ??= acl.reason;
      this.#log?.error({ err: acl.reason, file: aclFile }, 'ACL file not reloaded; keeping the previous rules');
    }
    if (firstError !== undefined) throw firstError;
    this.#log?.info({ passwordFile: passwordFile || undefined, aclFile: aclFile || undefined }, 'auth files reloaded');
  }

  /** Register the providers as hooks (call after the plugins registered theirs). */
  register(registry: HookRegistry): void {
    registry.addHook('authenticate', (request) => this.authenticate(request), 'auth');
    if (this.#config.aclFile !== '') {
      registry.addHook('authorizePublish', (client, message) => this.authorizePublish(client, message), 'acl');
      registry.addHook('authorizeSubscribe', (client, filter) => this.authorizeSubscribe(client, filter), 'acl');
      registry.addHook('authorizeRead', (client, message) => this.authorizeRead(client, message), 'acl');
    }
    registry.onReload(() => this.reload(), 'auth');
  }

  /** May clients without a (verified) username use this connection's listener? */
  #anonymousAllowed(request: AuthenticateRequest): boolean {
    const policy = this.#config.allowAnonymous;
    // Streams given to broker.handle() by the embedding program have no
    // listener facts; they are as local as the program itself.
    return policy === 'loopback' ? request.info.loopback ?? true : policy;
  }

  authenticate(request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult> {
    if (request.method !== undefined) return 'defer';
    const identity = request.info.identity;
    if (identity !== undefined && request.username === identity) return 'allow';
    if (request.username === undefined) return this.#anonymousAllowed(request) ? 'allow' : DENY_ANONYMOUS;
    const passwords = this.#passwords;
    if (passwords === null) return this.#anonymousAllowed(request) ? 'allow' : DENY_UNVERIFIED;
    return passwords.verify(request.username, request.password).then((ok) => (ok ? 'allow' : DENY_PASSWORD));
  }

  authorizePublish(client: HookClient, message: HookMessage): DecisionResult {
    const acl = this.#acl;
    if (acl === null) return 'defer';
    return acl.canPublish(client.clientId, client.username, message.topic) ? 'allow' : DENY_ACL;
  }

  authorizeSubscribe(client: HookClient, filter: string): DecisionResult {
    const acl = this.#acl;
    if (acl === null) return 'defer';
    return acl.canSubscribe(client.clientId, client.username, filter) ? 'allow' : DENY_ACL;
  }

  authorizeRead(client: HookClient, message: HookMessage): DecisionResult {
    const acl = this.#acl;
    if (acl === null) return 'defer';
    return acl.canRead(client.clientId, client.username, message.topic) ? 'allow' : DENY_ACL;
  }
}
