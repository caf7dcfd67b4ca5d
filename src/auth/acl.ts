/**
 * Mosquitto-compatible ACL file (`acl_file`), compiled for fast checks.
 *
 * File syntax (mosquitto.conf(5), "acl_file"; parser: mosquitto 2.0
 * src/security_default.c `aclfile__parse`):
 *
 *   # comment                          (a line whose first non-blank char is `#`)
 *   topic [read|write|readwrite|deny] FILTER
 *   user NAME                          (following `topic` lines belong to NAME)
 *   pattern [read|write|readwrite|deny] FILTER   (%u = username, %c = client id)
 *
 * - The access word is optional and defaults to readwrite. As in mosquitto,
 *   when only one word follows `topic`, that word is the filter (`topic read`
 *   is a rule for the topic "read"). The filter is the rest of the line,
 *   trimmed, so it may contain spaces.
 * - `topic` lines before the first `user` line form the anonymous section:
 *   they apply only to clients that connected without a username.
 *   A client with a username gets the rules of its own `user` section (several
 *   sections with the same name are merged) and nothing else from `topic` lines.
 * - `pattern` lines apply to every client, wherever they appear in the file.
 *   `%u`/`%c` are substituted only when they are a whole topic level
 *   ("The substitution pattern must be the only text for that level of
 *   hierarchy", mosquitto.conf(5)); elsewhere they are literal text. A pattern
 *   using `%u` never matches an anonymous client. A pattern whose substituted
 *   value is empty or contains `+`, `#` or `/` never matches, so a client
 *   cannot choose an id or name that widens a rule (mosquitto refuses `+`/`#`;
 *   we also refuse `/`, which mosquitto 1.x refused, because client ids are not
 *   authenticated and `a/b` would otherwise reach into another client's tree).
 *
 * Decision (mosquitto 2.0 `mosquitto_acl_check_default`, made stricter where
 * noted):
 * - A matching `deny` rule wins over any grant, from the user section, the
 *   anonymous section or a pattern alike. (Mosquitto 2.0 checks a user's own
 *   rules before patterns, so a user-section grant there beats a pattern deny;
 *   here any deny wins, which is the documented intent of `deny`.)
 * - Otherwise a matching rule whose access includes the requested one allows.
 * - No matching rule means deny.
 * - Publishing to `$SYS…` or `$share…` is always denied (mosquitto
 *   `acl__check_dollar`); `$SYS` can be read only through rules that spell out
 *   `$SYS` (a leading wildcard never matches a `$` topic [MQTT-4.7.2-1]).
 *
 * Subscribe check (`canSubscribe`): the filter is compared with rules using
 * "covers" (see topic-match.ts `filterCovers`, mosquitto's
 * `mosquitto_sub_matches_acl`): allowed when some read rule covers every topic
 * the filter can match and no deny rule covers it. A deny rule that only
 * overlaps part of the filter does not refuse the subscription; it is enforced
 * per message by `canRead`, which the broker MUST call before each delivery
 * (mosquitto also re-checks read access on delivery). For `$share/G/F` the
 * check applies to F.
 *
 * Compiled structure (a check never scans the rule list):
 *
 *   Acl
 *   ├── anonymous: RuleTrie            rules before the first `user` line
 *   ├── users: Map<name, RuleTrie>     one trie per `user` section
 *   └── patterns: RuleTrie             all `pattern` lines, with %u / %c edges
 *
 *   RuleNode (one per distinct rule prefix, keyed by topic level)
 *   ├── literal: Map<level, RuleNode>  exact level text
 *   ├── plus:    RuleNode              `+`
 *   ├── user / client: RuleNode        a level that is exactly `%u` / `%c` (patterns only)
 *   ├── grant / deny                   access of rules that END at this node
 *   └── hashGrant / hashDeny           access of rules `<this prefix>/#`
 *
 * A check walks the topic's levels from the root, following at each level the
 * literal edge (one Map lookup), `+`, and the `%u`/`%c` edge when the level
 * equals the username / client id, OR-ing the grant bits and deny flags met on
 * the way. The cost is bounded by the topic depth and the number of wildcard
 * branches, not by the number of rules: 10,000 literal rules cost one Map
 * lookup per level. Results accumulate in private fields, so a check
 * allocates only the level substrings.
 */
import { readFile } from 'node:fs/promises';
import { ternError } from '../errors.js';
import { isValidFilter, isValidTopic } from './topic-match.js';

const READ = 1;
const WRITE = 2;
const DOLLAR = 0x24;

class RuleNode {
  literal: Map<string, RuleNode> | undefined = undefined;
  plus: RuleNode | undefined = undefined;
  user: RuleNode | undefined = undefined;
  client: RuleNode | undefined = undefined;
  grant = 0;
  deny = false;
  hashGrant = 0;
  hashDeny = false;
}

/** Access requested by a check (bit set) or given by a rule (bit set, or deny). */
type Access = typeof READ | typeof WRITE;

class RuleTrie {
  readonly root = new RuleNode();
  /** Does any rule use %u / %c? Lets a check skip the value validation. */
  usesUser = false;
  usesClient = false;
  size = 0;

  add(filter: string, access: number, deny: boolean, pattern: boolean): void {
    let node = this.root;
    const levels = filter.split('/');
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as string;
      if (level === '#') {
        // isValidFilter guarantees `#` is last.
        if (deny) node.hashDeny = true;
        else node.hashGrant |= access;
        this.size++;
        return;
      }
      if (level === '+') {
        node = node.plus ??= new RuleNode();
      } else if (pattern && level === '%u') {
        this.usesUser = true;
        node = node.user ??= new RuleNode();
      } else if (pattern && level === '%c') {
        this.usesClient = true;
        node = node.client ??= new RuleNode();
      } else {
        node.literal ??= new Map();
        let next = node.literal.get(level);
        if (next === undefined) {
          next = new RuleNode();
          node.literal.set(level, next);
        }
        node = next;
      }
    }
    if (deny) node.deny = true;
    else node.grant |= access;
    this.size++;
  }
}

/** A substituted value that may safely stand for one topic level. */
function safeLevelValue(value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0) return undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x2b /* + */ || c === 0x23 /* # */ || c === 0x2f /* / */) return undefined;
  }
  return value;
}

const SPACE_RE = /[ \t]+/;

export class Acl {
  readonly #anonymous: RuleTrie;
  readonly #users: Map<string, RuleTrie>;
  readonly #patterns: RuleTrie;

  // Per-check accumulators (checks are synchronous, so these are never shared).
  #grant = 0;
  #deny = false;
  #user: string | undefined = undefined;
  #client: string | undefined = undefined;

  private constructor(anonymous: RuleTrie, users: Map<string, RuleTrie>, patterns: RuleTrie) {
    this.#anonymous = anonymous;
    this.#users = users;
    this.#patterns = patterns;
  }

  /** Read and compile an ACL file. Throws ERR_AUTH_ACL_FILE (unreadable, or a malformed line). */
  static async load(path: string): Promise<Acl> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw ternError('ERR_AUTH_ACL_FILE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    return Acl.parse(text, path);
  }

  /** Compile ACL text. `fileName` only names the source in errors (`file:line: reason`). */
  static parse(text: string, fileName = '<acl>'): Acl {
    const anonymous = new RuleTrie();
    const users = new Map<string, RuleTrie>();
    const patterns = new RuleTrie();
    let current = anonymous;
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const lineNo = i + 1;
      const fail = (reason: string): never => {
        throw ternError('ERR_AUTH_ACL_FILE', `${fileName}:${lineNo}: ${reason}`);
      };
      const line = (lines[i] as string).trim();
      if (line.length === 0 || line.charCodeAt(0) === 0x23 /* # */) continue;
      const m = SPACE_RE.exec(line);
      const keyword = m ? line.slice(0, m.index) : line;
      const rest = m ? line.slice(m.index + m[0].length) : '';
      if (keyword === 'user') {
        if (rest.length === 0) fail('missing username after "user"');
        let trie = users.get(rest);
        if (trie === undefined) {
          trie = new RuleTrie();
          users.set(rest, trie);
        }
        current = trie;
      } else if (keyword === 'topic' || keyword === 'pattern') {
        if (rest.length === 0) fail(`empty topic in "${keyword}" line`);
        const m2 = SPACE_RE.exec(rest);
        let accessWord: string | undefined;
        let filter: string;
        if (m2) {
          accessWord = rest.slice(0, m2.index);
          filter = rest.slice(m2.index + m2[0].length);
        } else {
          filter = rest; // mosquitto: a single word is the topic, access readwrite
        }
        let access = READ | WRITE;
        let deny = false;
        switch (accessWord) {
          case undefined:
          case 'readwrite':
            break;
          case 'read':
            access = READ;
            break;
          case 'write':
            access = WRITE;
            break;
          case 'deny':
            access = 0;
            deny = true;
            break;
          default:
            fail(`invalid access type "${accessWord}" (expected read, write, readwrite or deny)`);
        }
        if (!isValidFilter(filter)) fail(`invalid topic filter "${filter}"`);
        if (keyword === 'pattern') patterns.add(filter, access, deny, true);
        else current.add(filter, access, deny, false);
      } else {
        fail(`unknown keyword "${keyword}" (expected topic, pattern or user)`);
      }
    }
    return new Acl(anonymous, users, patterns);
  }

  /** Number of compiled rules (all sections and patterns). */
  get size(): number {
    let n = this.#anonymous.size + this.#patterns.size;
    for (const trie of this.#users.values()) n += trie.size;
    return n;
  }

  /** May this client PUBLISH to `topic` (a topic name)? */
  canPublish(clientId: string, username: string | undefined, topic: string): boolean {
    if (!isValidTopic(topic)) return false;
    // mosquitto acl__check_dollar: no client writes $SYS or $share topics.
    if (topic.startsWith('$SYS') || topic.startsWith('$share')) return false;
    return this.#checkTopic(clientId, username, topic, WRITE);
  }

  /** May a message on `topic` be delivered to this client? Call before every delivery. */
  canRead(clientId: string, username: string | undefined, topic: string): boolean {
    if (!isValidTopic(topic)) return false;
    return this.#checkTopic(clientId, username, topic, READ);
  }

  /**
   * May this client hold a subscription to `filter`? True when a read rule
   * covers the whole filter and no deny rule does (see the file header).
   */
  canSubscribe(clientId: string, username: string | undefined, filter: string): boolean {
    let f = filter;
    if (f.startsWith('$share/')) {
      // [MQTT-4.8.2] $share/{ShareName}/{filter}: authorize the real filter.
      const slash = f.indexOf('/', 7);
      if (slash < 0 || slash === 7) return false;
      f = f.slice(slash + 1);
    }
    if (!isValidFilter(f)) return false;
    this.#begin(clientId, username);
    const section = this.#section(username);
    if (section !== undefined) this.#walkFilter(section.root, f, 0, true, false);
    if (!this.#deny) this.#walkFilter(this.#patterns.root, f, 0, true, true);
    return !this.#deny && (this.#grant & READ) !== 0;
  }

  #section(username: string | undefined): RuleTrie | undefined {
    return username === undefined ? this.#anonymous : this.#users.get(username);
  }

  #begin(clientId: string, username: string | undefined): void {
    this.#grant = 0;
    this.#deny = false;
    this.#user = this.#patterns.usesUser ? safeLevelValue(username) : undefined;
    this.#client = this.#patterns.usesClient ? safeLevelValue(clientId) : undefined;
  }

  #checkTopic(clientId: string, username: string | undefined, topic: string, access: Access): boolean {
    this.#begin(clientId, username);
    const section = this.#section(username);
    if (section !== undefined) this.#walkTopic(section.root, topic, 0, true, false);
    if (!this.#deny) this.#walkTopic(this.#patterns.root, topic, 0, true, true);
    return !this.#deny && (this.#grant & access) !== 0;
  }

  /**
   * Collect the rules matching topic name `topic` from `start` (the start of
   * the current level; -1 once the topic is used up) under `node`.
   */
  #walkTopic(node: RuleNode, topic: string, start: number, root: boolean, pattern: boolean): void {
    // A leading wildcard or substitution never matches a `$` topic [MQTT-4.7.2-1].
    const dollarRoot = root && topic.charCodeAt(0) === DOLLAR;
    if (!dollarRoot) {
      // `prefix/#` matches the prefix itself and everything below it.
      if (node.hashDeny) {
        this.#deny = true;
        return;
      }
      this.#grant |= node.hashGrant;
    }
    if (start < 0) {
      if (node.deny) this.#deny = true;
      this.#grant |= node.grant;
      return;
    }
    const slash = topic.indexOf('/', start);
    const end = slash < 0 ? topic.length : slash;
    const next = slash < 0 ? -1 : slash + 1;
    const level = topic.slice(start, end);
    if (node.literal !== undefined) {
      const child = node.literal.get(level);
      if (child !== undefined) {
        this.#walkTopic(child, topic, next, false, pattern);
        if (this.#deny) return;
      }
    }
    if (dollarRoot) return;
    if (node.plus !== undefined) {
      this.#walkTopic(node.plus, topic, next, false, pattern);
      if (this.#deny) return;
    }
    if (pattern) {
      if (node.user !== undefined && this.#user === level) {
        this.#walkTopic(node.user, topic, next, false, pattern);
        if (this.#deny) return;
      }
      if (node.client !== undefined && this.#client === level) {
        this.#walkTopic(node.client, topic, next, false, pattern);
      }
    }
  }

  /**
   * Collect the rules that cover subscription filter `filter` from `start`
   * under `node` (rule ⊇ filter, see topic-match.ts `filterCovers`).
   */
  #walkFilter(node: RuleNode, filter: string, start: number, root: boolean, pattern: boolean): void {
    const dollarRoot = root && filter.charCodeAt(0) === DOLLAR;
    if (!dollarRoot) {
      if (node.hashDeny) {
        this.#deny = true;
        return;
      }
      this.#grant |= node.hashGrant;
    }
    if (start < 0) {
      if (node.deny) this.#deny = true;
      this.#grant |= node.grant;
      return;
    }
    const slash = filter.indexOf('/', start);
    const end = slash < 0 ? filter.length : slash;
    const next = slash < 0 ? -1 : slash + 1;
    const single = end === start + 1;
    const c = filter.charCodeAt(start);
    if (single && c === 0x23 /* # */) return; // only a rule `#` covers `#`: handled above
    if (single && c === 0x2b /* + */) {
      // Only a rule `+` covers `+`.
      if (node.plus !== undefined) this.#walkFilter(node.plus, filter, next, false, pattern);
      return;
    }
    const level = filter.slice(start, end);
    if (node.literal !== undefined) {
      const child = node.literal.get(level);
      if (child !== undefined) {
        this.#walkFilter(child, filter, next, false, pattern);
        if (this.#deny) return;
      }
    }
    if (dollarRoot) return;
    if (node.plus !== undefined) {
      this.#walkFilter(node.plus, filter, next, false, pattern);
      if (this.#deny) return;
    }
    if (pattern) {
      if (node.user !== undefined && this.#user === level) {
        this.#walkFilter(node.user, filter, next, false, pattern);
        if (this.#deny) return;
      }
      if (node.client !== undefined && this.#client === level) {
        this.#walkFilter(node.client, filter, next, false, pattern);
      }
    }
  }
}
