/**
 * The hook registry: validated registration (Fastify `lib/hooks.js` style,
 * unknown names are coded errors) and the runners the broker calls.
 *
 * Decision runs (mosquitto's MOSQ_ERR_PLUGIN_DEFER chain):
 * - hooks run in registration order; the first answer that is not `defer` wins;
 * - when every hook defers, the answer is deny;
 * - when no hook is registered for a decision, the runner answers allow at
 *   once (the fast path: no call, no allocation) — except authenticate,
 *   which the built-in provider always answers;
 * - a hook that throws, rejects or returns something that is not a
 *   decision counts as deny (fail closed) and is logged.
 * Publishing to a `$` topic is refused before any hook runs: `$SYS` is the
 * broker's, and no hook can make it writable.
 *
 * Runners stay synchronous while the hooks answer synchronously, and switch
 * to a Promise at the first hook that returns one. The broker therefore
 * checks `isPromise(result)` instead of always awaiting.
 */
import { EventEmitter } from 'node:events';
import { ReasonCode } from '../codec/constants.js';
import type { QoS } from '../codec/types.js';
import { ternError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  HOOK_EVENT_NAMES,
  HOOK_NAMES,
  type AuthenticateRequest,
  type AuthenticateResult,
  type AuthVerdict,
  type DecisionResult,
  type HookClient,
  type HookEventName,
  type HookEvents,
  type HookFunctions,
  type HookMessage,
  type HookName,
  type MaybePromise,
  type Verdict,
} from './types.js';

type DecisionFn = (a: unknown, b: unknown, c: unknown) => MaybePromise<DecisionResult>;
type AsyncTask = () => MaybePromise<void>;

export const ALLOW: Verdict = Object.freeze({ allowed: true, reasonCode: ReasonCode.SUCCESS, reason: undefined });
const DENY: Verdict = Object.freeze({ allowed: false, reasonCode: ReasonCode.NOT_AUTHORIZED, reason: undefined });
const ALL_DEFERRED: Verdict = Object.freeze({ allowed: false, reasonCode: ReasonCode.NOT_AUTHORIZED, reason: 'no hook allowed it' });
const HOOK_FAILED: Verdict = Object.freeze({ allowed: false, reasonCode: ReasonCode.NOT_AUTHORIZED, reason: 'authorization hook failed' });
const DOLLAR_TOPIC: Verdict = Object.freeze({ allowed: false, reasonCode: ReasonCode.NOT_AUTHORIZED, reason: 'clients may not publish to $ topics' });

export function isPromise<T>(value: MaybePromise<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function';
}

/** A deny reason code must be an error code (>= 0x80); anything else becomes 0x87 Not authorized. */
function denyCode(code: number | undefined): number {
  return code !== undefined && Number.isInteger(code) && code >= 0x80 && code <= 0xff ? code : ReasonCode.NOT_AUTHORIZED;
}

/** A hook's answer -> Verdict, or undefined for defer, or null when it is not a valid answer. */
function toVerdict(r: DecisionResult): Verdict | undefined | null {
  if (r === 'allow') return ALLOW;
  if (r === 'defer') return undefined;
  if (r === 'deny') return DENY;
  if (typeof r !== 'object' || r === null) return null;
  switch (r.decision) {
    case 'allow':
      return ALLOW;
    case 'defer':
      return undefined;
    case 'deny':
      return r.reasonCode === undefined && r.reason === undefined ? DENY : { allowed: false, reasonCode: denyCode(r.reasonCode), reason: r.reason };
    default:
      return null;
  }
}

function authVerdict(result: AuthVerdict['result'], reasonCode: number, reason?: string, authData?: Buffer, username?: string): AuthVerdict {
  return { result, reasonCode, reason, authData, username };
}

/** Minimal logger a plugin gets (a pino child logger in practice). */
export interface PluginLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export class HookRegistry {
  readonly #log: Logger | undefined;
  readonly #authenticate: Array<HookFunctions['authenticate']> = [];
  readonly #publish: DecisionFn[] = [];
  readonly #subscribe: DecisionFn[] = [];
  readonly #read: DecisionFn[] = [];
  readonly #message: Array<HookFunctions['message']> = [];
  /** Who registered each hook, parallel to the arrays above, for logs. */
  readonly #owners = new Map<unknown, string>();
  readonly #events = new EventEmitter<HookEvents>();
  readonly #reloaders: Array<{ owner: string; fn: AsyncTask }> = [];
  readonly #closers: Array<{ owner: string; fn: AsyncTask }> = [];

  constructor(log?: Logger) {
    this.#log = log;
  }

  /** Register a hook. Throws ERR_HOOK_UNKNOWN / ERR_HOOK_INVALID. */
  addHook<K extends HookName>(name: K, fn: HookFunctions[K], owner = 'tern'): void {
    if (!(HOOK_NAMES as readonly string[]).includes(name)) {
      throw ternError('ERR_HOOK_UNKNOWN', `"${String(name)}" (hooks: ${HOOK_NAMES.join(', ')})`);
    }
    if (typeof fn !== 'function') throw ternError('ERR_HOOK_INVALID', `${name} from ${owner}`);
    this.#owners.set(fn, owner);
    switch (name) {
      case 'authenticate':
        this.#authenticate.push(fn as HookFunctions['authenticate']);
        break;
      case 'authorizePublish':
        this.#publish.push(fn as unknown as DecisionFn);
        break;
      case 'authorizeSubscribe':
        this.#subscribe.push(fn as unknown as DecisionFn);
        break;
      case 'authorizeRead':
        this.#read.push(fn as unknown as DecisionFn);
        break;
      case 'message':
        this.#message.push(fn as HookFunctions['message']);
        break;
    }
  }

  /** Listen to a notification event. A throwing listener is logged, never breaks the broker. Throws ERR_HOOK_UNKNOWN. */
  on<E extends HookEventName>(event: E, listener: (...args: HookEvents[E]) => void, owner = 'tern'): void {
    if (!(HOOK_EVENT_NAMES as readonly string[]).includes(event)) {
      throw ternError('ERR_HOOK_UNKNOWN', `event "${String(event)}" (events: ${HOOK_EVENT_NAMES.join(', ')})`);
    }
    if (typeof listener !== 'function') throw ternError('ERR_HOOK_INVALID', `${event} listener from ${owner}`);
    const safe = (...args: HookEvents[E]): void => {
      try {
        listener(...args);
      } catch (err) {
        this.#log?.error({ err, event, owner }, 'event listener threw');
      }
    };
    (this.#events as EventEmitter).on(event, safe as (...args: unknown[]) => void);
  }

  /** Broker side: notify listeners (cheap when there are none). */
  emit<E extends HookEventName>(event: E, ...args: HookEvents[E]): void {
    (this.#events as EventEmitter).emit(event, ...args);
  }

  /** Does any listener want this event? Lets the broker skip building arguments. */
  listens(event: HookEventName): boolean {
    return this.#events.listenerCount(event) > 0;
  }

  /** Called by reload() (SIGHUP): re-read files and the like. */
  onReload(fn: AsyncTask, owner = 'tern'): void {
    this.#reloaders.push({ owner, fn });
  }

  /** Called by close(), in reverse registration order. */
  onClose(fn: AsyncTask, owner = 'tern'): void {
    this.#closers.push({ owner, fn });
  }

  get hasAuthorizePublish(): boolean {
    return this.#publish.length > 0;
  }

  get hasAuthorizeSubscribe(): boolean {
    return this.#subscribe.length > 0;
  }

  /** False when no read check is registered: the broker can skip authorizeRead per delivery. */
  get hasAuthorizeRead(): boolean {
    return this.#read.length > 0;
  }

  /** False when no message hook is registered: the broker can skip transformMessage. */
  get hasMessageHooks(): boolean {
    return this.#message.length > 0;
  }

  // --- Runners (broker side) ---

  /** At CONNECT (step 0) and for each AUTH packet. All-defer: 0x8C Bad authentication method when a method was given, else 0x87. */
  authenticate(request: AuthenticateRequest): MaybePromise<AuthVerdict> {
    const hooks = this.#authenticate;
    for (let i = 0; i < hooks.length; i++) {
      let r: MaybePromise<AuthenticateResult>;
      try {
        r = hooks[i]!(request);
      } catch (err) {
        return this.#authFailed(hooks[i], err);
      }
      if (isPromise(r)) return this.#authenticateAsync(request, i, r);
      const v = this.#toAuthVerdict(request, r, hooks[i]);
      if (v !== undefined) return v;
    }
    return this.#authAllDeferred(request);
  }

  async #authenticateAsync(request: AuthenticateRequest, from: number, pending: PromiseLike<AuthenticateResult>): Promise<AuthVerdict> {
    const hooks = this.#authenticate;
    for (let i = from; i < hooks.length; i++) {
      let r: AuthenticateResult;
      try {
        r = i === from ? await pending : await hooks[i]!(request);
      } catch (err) {
        return this.#authFailed(hooks[i], err);
      }
      const v = this.#toAuthVerdict(request, r, hooks[i]);
      if (v !== undefined) return v;
    }
    return this.#authAllDeferred(request);
  }

  #authAllDeferred(request: AuthenticateRequest): AuthVerdict {
    return request.method !== undefined
      ? authVerdict('deny', ReasonCode.BAD_AUTHENTICATION_METHOD, `no hook handles authentication method "${request.method}"`)
      : authVerdict('deny', ReasonCode.NOT_AUTHORIZED, 'no hook allowed it');
  }

  #authFailed(hook: unknown, err: unknown): AuthVerdict {
    this.#log?.error({ err, hook: 'authenticate', owner: this.#owners.get(hook) }, 'hook failed; denying');
    return authVerdict('deny', ReasonCode.UNSPECIFIED_ERROR, 'authentication hook failed');
  }

  #toAuthVerdict(request: AuthenticateRequest, r: AuthenticateResult, hook: unknown): AuthVerdict | undefined {
    if (r === 'allow') return authVerdict('allow', ReasonCode.SUCCESS);
    if (r === 'defer') return undefined;
    if (r === 'deny') return authVerdict('deny', ReasonCode.NOT_AUTHORIZED);
    if (typeof r === 'object' && r !== null) {
      switch (r.decision) {
        case 'allow':
          return authVerdict('allow', ReasonCode.SUCCESS, r.reason, r.authData, r.username);
        case 'defer':
          return undefined;
        case 'deny':
          return authVerdict('deny', denyCode(r.reasonCode), r.reason);
        case 'continue':
          if (request.method !== undefined) return authVerdict('continue', ReasonCode.CONTINUE_AUTHENTICATION, r.reason, r.authData);
          break;
      }
    }
    this.#log?.error({ hook: 'authenticate', owner: this.#owners.get(hook), answer: String((r as { decision?: unknown } | null)?.decision ?? r) }, 'invalid hook answer; denying');
    return authVerdict('deny', ReasonCode.UNSPECIFIED_ERROR, 'authentication hook failed');
  }

  /** Per inbound PUBLISH. `$` topics are always refused. */
  authorizePublish(client: HookClient, message: HookMessage): MaybePromise<Verdict> {
    if (message.topic.charCodeAt(0) === 0x24 /* $ */) return DOLLAR_TOPIC;
    if (this.#publish.length === 0) return ALLOW;
    return this.#decide(this.#publish, 'authorizePublish', client, message, undefined);
  }

  /** Per topic filter of a SUBSCRIBE. */
  authorizeSubscribe(client: HookClient, filter: string, qos: QoS): MaybePromise<Verdict> {
    if (this.#subscribe.length === 0) return ALLOW;
    return this.#decide(this.#subscribe, 'authorizeSubscribe', client, filter, qos);
  }

  /** Before each delivery to a subscriber (skip it when !hasAuthorizeRead). */
  authorizeRead(client: HookClient, message: HookMessage): MaybePromise<Verdict> {
    if (this.#read.length === 0) return ALLOW;
    return this.#decide(this.#read, 'authorizeRead', client, message, undefined);
  }

  #decide(hooks: DecisionFn[], name: string, a: unknown, b: unknown, c: unknown): MaybePromise<Verdict> {
    for (let i = 0; i < hooks.length; i++) {
      let r: MaybePromise<DecisionResult>;
      try {
        r = hooks[i]!(a, b, c);
      } catch (err) {
        return this.#decisionFailed(name, hooks[i], err);
      }
      if (isPromise(r)) return this.#decideAsync(hooks, name, i, r, a, b, c);
      const v = toVerdict(r);
      if (v === null) return this.#decisionFailed(name, hooks[i], undefined, r);
      if (v !== undefined) return v;
    }
    return ALL_DEFERRED;
  }

  async #decideAsync(hooks: DecisionFn[], name: string, from: number, pending: PromiseLike<DecisionResult>, a: unknown, b: unknown, c: unknown): Promise<Verdict> {
    for (let i = from; i < hooks.length; i++) {
      let r: DecisionResult;
      try {
        r = i === from ? await pending : await hooks[i]!(a, b, c);
      } catch (err) {
        return this.#decisionFailed(name, hooks[i], err);
      }
      const v = toVerdict(r);
      if (v === null) return this.#decisionFailed(name, hooks[i], undefined, r);
      if (v !== undefined) return v;
    }
    return ALL_DEFERRED;
  }

  #decisionFailed(name: string, hook: unknown, err: unknown, answer?: unknown): Verdict {
    this.#log?.error({ err, hook: name, owner: this.#owners.get(hook), answer: answer === undefined ? undefined : String(answer) }, 'hook failed or gave no decision; denying');
    return HOOK_FAILED;
  }

  /**
   * Run the message hooks before routing (skip when !hasMessageHooks).
   * Returns the message to route (the same object when unchanged) or null
   * to drop it. A failing hook drops the message (fail closed) and is logged.
   */
  transformMessage(client: HookClient | undefined, message: HookMessage): MaybePromise<HookMessage | null> {
    const hooks = this.#message;
    let current = message;
    for (let i = 0; i < hooks.length; i++) {
      let r: MaybePromise<HookMessage | null | undefined>;
      try {
        r = hooks[i]!(client, current);
      } catch (err) {
        return this.#messageFailed(hooks[i], err);
      }
      if (isPromise(r)) return this.#transformAsync(client, current, i, r);
      if (r === null) return null;
      if (r !== undefined) current = r;
    }
    return current;
  }

  async #transformAsync(client: HookClient | undefined, message: HookMessage, from: number, pending: PromiseLike<HookMessage | null | undefined>): Promise<HookMessage | null> {
    const hooks = this.#message;
    let current = message;
    for (let i = from; i < hooks.length; i++) {
      let r: HookMessage | null | undefined;
      try {
        r = i === from ? await pending : await hooks[i]!(client, current);
      } catch (err) {
        return this.#messageFailed(hooks[i], err);
      }
      if (r === null) return null;
      if (r !== undefined) current = r;
    }
    return current;
  }

  #messageFailed(hook: unknown, err: unknown): null {
    this.#log?.error({ err, hook: 'message', owner: this.#owners.get(hook) }, 'message hook failed; dropping the message');
    return null;
  }

  // --- Lifecycle ---

  /**
   * Run every reload task (SIGHUP). A failing task is logged and the others
   * still run; resolves with the errors (empty when all succeeded).
   */
  async reload(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const { owner, fn } of this.#reloaders) {
      try {
        await fn();
      } catch (err) {
        this.#log?.error({ err, owner }, 'reload failed; keeping the previous state');
        errors.push(err as Error);
      }
    }
    return errors;
  }

  /** Run the close tasks in reverse order and remove every listener. */
  async close(): Promise<void> {
    for (const { owner, fn } of [...this.#closers].reverse()) {
      try {
        await fn();
      } catch (err) {
        this.#log?.error({ err, owner }, 'close task failed');
      }
    }
    this.#closers.length = 0;
    this.#events.removeAllListeners();
  }
}
