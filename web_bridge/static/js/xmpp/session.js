/**
 * What the client keeps in the browser between pages, and the steps of starting a session.
 *
 * - The login ("remember me"): a XEP-0484 FAST token (fast.js) with its expiry, use count and
 *   client id; only with servers that offer no FAST, the SCRAM ClientKey/ServerKey with salt,
 *   iteration count and mechanism. Never the password. In localStorage when remembered; else
 *   in sessionStorage only, so that a reload of this tab can still log in and resume its
 *   session (XEP-0198 needs authentication first).
 * - A snapshot of the client's state (contacts and their presence, requests, rooms and their
 *   occupants, profiles) in sessionStorage: a resumed session gets no presence again, so a
 *   reloaded page takes what it knew from there.
 * - Binding (RFC 6120 §7), where the server has no Bind 2 (sasl2.js).
 * @module xmpp/session
 */

import { NS, x, child, text, randomId } from './xml.js';
import { XmppError } from './errors.js';

const LOGIN = 'xmpp.login';
const SNAPSHOT = 'xmpp.snapshot';

function storages() {
  const out = {};
  try { out.local = globalThis.localStorage || null; } catch { out.local = null; }
  try { out.session = globalThis.sessionStorage || null; } catch { out.session = null; }
  return out;
}

function read(storage, key) {
  try {
    const raw = storage && storage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function write(storage, key, value) {
  try {
    if (storage) storage.setItem(key, JSON.stringify(value));
  } catch { /* full or disabled */ }
}

function remove(storage, key) {
  try {
    if (storage) storage.removeItem(key);
  } catch { /* disabled */ }
}

function valid(v, domain) {
  return !!v && typeof v.username === 'string' && v.domain === domain
    && ((!!v.fast && typeof v.fast.token === 'string') || (!!v.keys && typeof v.keys === 'object'));
}

/**
 * The stored login of this tab, else the remembered one:
 * {username, domain, remember, fast?: {token, expiry, mechanism, count, clientId}, keys?}.
 */
export function loadLogin(domain) {
  const { local, session } = storages();
  for (const s of [session, local]) {
    const v = read(s, LOGIN);
    if (valid(v, domain)) return { ...v, remember: s === local };
  }
  return null;
}

/**
 * Keep a new login (a FAST token, or SCRAM keys where the server has no FAST): in
 * localStorage when remembered, else in sessionStorage (this tab only); the other place is
 * emptied. Nothing to keep (e.g. after PLAIN): both are.
 */
export function storeLogin({ username, domain, remember, fast = null, keys = null }) {
  const { local, session } = storages();
  const value = fast ? { username, domain, fast } : { username, domain, keys };
  const [into, other] = remember ? [local, session] : [session, local];
  if (fast || keys) write(into, LOGIN, value);
  else remove(into, LOGIN);
  remove(other, LOGIN);
}

/**
 * Write back a login used again (the FAST count, a rotated token), where it is stored — and
 * only if it is still there for this account (another tab may have logged out or in).
 * @returns {boolean} whether it was written
 */
export function updateLogin({ username, domain, remember, fast }) {
  const { local, session } = storages();
  const into = remember ? local : session;
  const now = read(into, LOGIN);
  if (!valid(now, domain) || now.username !== username || !now.fast) return false;
  write(into, LOGIN, { username, domain, fast });
  return true;
}

/** Forget everything stored (logout, or keys the server no longer takes). */
export function clearStored() {
  const { local, session } = storages();
  for (const s of [local, session]) {
    remove(s, LOGIN);
    remove(s, SNAPSHOT);
    remove(s, 'xmpp.sm');
  }
}

/** Write the snapshot of the client's state for a reload of this tab. */
export function saveSnapshot(client) {
  if (!client.jid) return;
  const rooms = [...client.rooms.values()].map((r) => ({ ...r, occupants: [...r.occupants.values()] }));
  const value = {
    jid: client.jid,
    contacts: [...client.contacts.values()],
    resources: [...client.roster.resources].map(([b, m]) => [b, [...m]]),
    requests: [...client.requests.values()],
    rooms,
    profile: { nick: client.profile.nick, avatarUrl: client.profile.avatarUrl, avatarId: client.profile.avatarId },
    people: [...client.profile.people],
    lastSent: [...client.chat.lastSent],
    bookmarks: [...client.bookmarks.items],
  };
  write(storages().session, SNAPSHOT, value);
}

/** Take the snapshot back, if it is of the session `jid`; returns whether it was. */
export function loadSnapshot(client, jid) {
  const s = read(storages().session, SNAPSHOT);
  if (!s || s.jid !== jid) return false;
  try {
    client.roster.contacts = new Map(s.contacts.map((c) => [c.jid, c]));
    client.roster.resources = new Map(s.resources.map(([b, list]) => [b, new Map(list)]));
    client.roster.requests = new Map(s.requests.map((r) => [r.jid, r]));
    client.muc.rooms = new Map(s.rooms.map((r) => [r.jid, { ...r, occupants: new Map(r.occupants.map((o) => [o.nick, o])) }]));
    Object.assign(client.profile, s.profile);
    client.profile.people = new Map(s.people);
    client.chat.lastSent = new Map(s.lastSent);
    client.bookmarks.items = new Map(s.bookmarks);
    return true;
  } catch {
    return false;
  }
}

/**
 * RFC 6120 §7: bind a resource; resolves with the full JID.
 * @param {import('./connection.js').Connection} conn
 * @param {Element} features
 */
export async function bind(conn, features) {
  if (!child(features, 'bind', NS.BIND)) throw new XmppError('feature-not-implemented', 'the server offers no resource binding');
  const res = await conn.iq(x('iq', { type: 'set' }, x('bind', { xmlns: NS.BIND }, x('resource', {}, `web-${randomId(8)}`))));
  const jid = text(child(res, 'bind', NS.BIND), 'jid', NS.BIND);
  if (!jid) throw new XmppError('undefined-condition', 'no JID bound');
  const session = child(features, 'session', 'urn:ietf:params:xml:ns:xmpp-session');
  if (session && !child(session, 'optional', 'urn:ietf:params:xml:ns:xmpp-session')) {
    // RFC 3921 §3: an old server that still wants a session established.
    await conn.iq(x('iq', { type: 'set' }, x('session', { xmlns: 'urn:ietf:params:xml:ns:xmpp-session' })));
  }
  return jid;
}

/** Whether the features offer XEP-0198. */
export function offersSm(features) {
  return !!child(features, 'sm', NS.SM);
}
