/**
 * Runs the Debian `mosquitto_pub` / `mosquitto_sub` command-line clients
 * against the broker under test (interop with a third-party client stack).
 * Every run is bounded by a timeout and killed in `t.after`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SubMessage {
  topic: string;
  qos: number;
  retain: boolean;
  payload: string;
}

export interface SubResult extends ProcessResult {
  /** Messages printed by mosquitto_sub, in arrival order. */
  messages: SubMessage[];
}

/** Output marker for received messages, kept apart from `-d` debug lines. */
const MARK = 'MSG|';
const FORMAT = `${MARK}%q|%r|%t|%p`;

function run(
  t: TestContext | undefined,
  command: string,
  args: readonly string[],
  timeoutMs: number,
  onStdout?: (all: string) => void,
): { child: ChildProcess; done: Promise<ProcessResult> } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (s: string) => {
    stdout += s;
    onStdout?.(stdout);
  });
  child.stderr?.on('data', (s: string) => {
    stderr += s;
  });
  t?.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const done = new Promise<ProcessResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')}: no exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

/** Runs `mosquitto_pub -h host -p port [-V mqttv311] ...args` to completion (rejects on timeout). */
export function mosquittoPub(
  t: TestContext | undefined,
  port: number,
  args: readonly string[],
  timeoutMs = 5000,
): Promise<ProcessResult> {
  return run(t, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...v311(args), ...args], timeoutMs).done;
}

/** A running `mosquitto_sub`; use `-C n` / `-W secs` / `-E` so it exits by itself. */
export interface MosquittoSub {
  child: ChildProcess;
  /** Resolves once the broker's SUBACK was received (from the `-d` debug output). */
  subscribed: Promise<void>;
  /** Resolves when the process exits, with the parsed messages. */
  result: Promise<SubResult>;
}

/**
 * Starts `mosquitto_sub -d -F <format> -h host -p port [-V mqttv311] ...args`. The `-d` flag
 * is what lets `subscribed` observe the SUBACK; messages are parsed from the
 * `-F` lines (topics and payloads must not contain `|` or newlines).
 */
export function mosquittoSub(
  t: TestContext | undefined,
  port: number,
  args: readonly string[],
  timeoutMs = 10_000,
): MosquittoSub {
  let onSuback: () => void = () => {};
  const subscribed = new Promise<void>((resolve) => {
    onSuback = resolve;
  });
  // stdbuf: line-buffer stdout, or the SUBACK debug line sits in stdio's pipe buffer.
  const { child, done } = run(t, 'stdbuf', ['-oL', 'mosquitto_sub', '-d', '-F', FORMAT, '-h', '127.0.0.1', '-p', String(port), ...v311(args), ...args], timeoutMs, (all) => {
    if (all.includes('received SUBACK')) onSuback();
  });
  const result = done.then((r) => ({ ...r, messages: parseMessages(r.stdout) }));
  // A sub that dies before subscribing must fail `subscribed` rather than hang it.
  const guardedSubscribed = Promise.race([
    subscribed,
    result.then((r) => {
      if (!r.stdout.includes('received SUBACK')) {
        throw new Error(`mosquitto_sub exited (${r.code}) before SUBACK\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      }
    }),
  ]);
  // Avoid unhandled rejections when a test only awaits one of the two.
  guardedSubscribed.catch(() => {});
  result.catch(() => {});
  return { child, subscribed: guardedSubscribed, result };
}

/** MQTT 3.1.1 unless the caller picked a version. */
function v311(args: readonly string[]): string[] {
  return args.includes('-V') ? [] : ['-V', 'mqttv311'];
}

function parseMessages(stdout: string): SubMessage[] {
  const out: SubMessage[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(MARK)) continue;
    const [qos, retain, topic, ...rest] = line.slice(MARK.length).split('|');
    out.push({ qos: Number(qos), retain: retain === '1', topic: topic ?? '', payload: rest.join('|') });
  }
  return out;
}
