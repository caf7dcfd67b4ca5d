/**
 * Adapters from the broker's parts to what the operations side shows:
 * the auth layer's address bans as API bans, bridges as status rows.
 */
import type { BanList as AddressBans } from '../auth/bans.js';
import type { Bridge } from '../bridge/bridge.js';
import type { Ban, BanList, BridgeStatus } from './types.js';

/** Address bans (the only kind the auth layer keeps) as the admin API's ban list. */
export function banListOf(bans: AddressBans): BanList {
  return {
    list: () =>
      bans.list().map((b) => ({
        kind: 'address' as const,
        value: b.address,
        reason: b.reason,
        ...(Number.isFinite(b.until) ? { expiresAt: new Date(b.until).toISOString() } : {}),
      })),
    add: (ban: Ban) => {
      if (ban.kind !== 'address') throw new TypeError(`only address bans are supported, not ${ban.kind}`);
      const duration = ban.expiresAt !== undefined ? Date.parse(ban.expiresAt) - Date.now() : Number.POSITIVE_INFINITY;
      bans.add(ban.value, duration, ban.reason);
    },
    remove: (kind, value) => kind === 'address' && bans.remove(value),
  };
}

export function bridgeStatusOf(bridge: Bridge): BridgeStatus {
  const s = bridge.stats();
  return { ...s, name: s.name, state: s.remote.state, remote: s.remote.description };
}
