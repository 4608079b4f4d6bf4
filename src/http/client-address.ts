import type { IncomingMessage } from 'node:http';

const normalise = (address: string): string => (address.startsWith('::ffff:') ? address.slice(7) : address).trim().toLowerCase();

/**
 * The client's address: the socket's peer, unless that peer is one of `trustedProxies` — then the right-most
 * X-Forwarded-For entry that is not a trusted proxy (entries left of it could be written by anyone).
 */
export function clientAddress(req: IncomingMessage, trustedProxies: readonly string[]): string {
  const peer = normalise(req.socket.remoteAddress ?? 'unknown');
  if (trustedProxies.length === 0) return peer;
  const trusted = new Set(trustedProxies.map(normalise));
  if (!trusted.has(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map(normalise).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) if (!trusted.has(hops[i]!)) return hops[i]!;
  return peer;
}
