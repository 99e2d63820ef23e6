/**
 * XEP-0484: Fast Authentication Streamlining Tokens — how the app stays logged in without
 * keeping the password (or anything derived from it).
 *
 * A password login over SASL2 asks for a token (<request-token mechanism='HT-SHA-256-NONE'/>);
 * later logins send <fast count/> and one message of draft-schmaus-kitten-sasl-ht:
 *
 *     initiator: authcid NUL HMAC-SHA-256(token, "Initiator")
 *     responder: HMAC-SHA-256(token, "Responder")      (the <additional-data/> of <success/>)
 *
 * The browser sees no TLS channel, so only HT-SHA-256-NONE (no channel binding) is used.
 *
 * - The token is bound to the client's SASL2 <user-agent id/> (§4.4): a random UUID kept in
 *   localStorage (`xmpp.agent`), one per browser, kept with the token as well.
 * - `count` (§4.4, replay protection) goes up by one for every use and is stored before the
 *   token is sent. Every use, and the rotation a <success/> may bring (a new <token/>
 *   replaces the stored one, §5), happen under a Web Lock, so that two tabs sharing a
 *   remembered token never send the same count or keep a token the server dropped.
 * - Logout: a last login with <fast invalidate='true'/> (§6) revokes the client's tokens.
 * @module xmpp/fast
 */

import { NS, x, child } from './xml.js';
import { XmppError } from './errors.js';
import { hmac, equal, subtle } from './sasl.js';

const AGENT = 'xmpp.agent';
const SOFTWARE = 'xmppd web';
const enc = new TextEncoder();

/** The FAST mechanisms this client can run (no channel binding in a browser). */
const HT = 'HT-SHA-256-NONE';

let memoryAgent = null;

function local() {
  try { return globalThis.localStorage || null; } catch { return null; }
}

function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; // RFC 9562 version 4
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (v) => v.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * XEP-0388 §2.3: this browser's stable client id (made and stored on first use).
 * @returns {string}
 */
export function agentId() {
  const storage = local();
  try {
    const stored = storage && storage.getItem(AGENT);
    if (stored && /^[0-9a-f-]{36}$/.test(stored)) return stored;
  } catch { /* disabled */ }
  const id = memoryAgent || uuid();
  memoryAgent = id;
  try {
    if (storage) storage.setItem(AGENT, id);
  } catch { /* full or disabled: the id lives as long as the page */ }
  return id;
}

/** A readable name of this device: the browser and the platform. */
function deviceName() {
  const nav = globalThis.navigator || {};
  const data = nav.userAgentData;
  let browser = '';
  let platform = '';
  if (data && Array.isArray(data.brands)) {
    const brands = data.brands.map((b) => b.brand).filter((b) => !/not.?a.?brand/i.test(b));
    browser = brands.find((b) => !/^chromium$/i.test(b)) || brands[0] || '';
    platform = data.platform || '';
  }
  if (!browser) {
    const ua = String(nav.userAgent || '');
    const m = ua.match(/(Firefox|Edg|OPR|Chrome|Chromium|Safari)\/[\d.]+/);
    browser = m ? { Edg: 'Edge', OPR: 'Opera' }[m[1]] || m[1] : 'Browser';
  }
  platform = platform || String(nav.platform || '');
  return (platform ? `${browser} on ${platform}` : browser).slice(0, 64);
}

/** XEP-0388 §2.3: <user-agent id><software/><device/></user-agent>. @param {string} id */
export function userAgent(id) {
  return x('user-agent', { id }, x('software', {}, SOFTWARE), x('device', {}, deviceName()));
}

/**
 * The FAST mechanism to use with an <authentication/> element (SASL2's), or null when the
 * server offers none this client can run.
 * @param {Element|null} auth
 */
export function fastMechanism(auth) {
  if (!auth || !subtle()) return null;
  const fast = child(child(auth, 'inline', NS.SASL2), 'fast', NS.FAST);
  if (!fast) return null;
  for (let m = fast.firstElementChild; m; m = m.nextElementSibling) {
    if (m.localName === 'mechanism' && m.namespaceURI === NS.FAST && m.textContent.trim() === HT) return HT;
  }
  return null;
}

/** <request-token/> (§4.2) for a login with the password. @param {string} mechanism */
export function requestToken(mechanism) {
  return x('request-token', { xmlns: NS.FAST, mechanism });
}

/** <fast count invalidate/> (§4.4, §6) for a login with the token. */
export function fastElement(count, invalidate = false) {
  return x('fast', { xmlns: NS.FAST, count, invalidate: invalidate ? 'true' : null });
}

/**
 * The token a <success/> hands out: {token, expiry, mechanism}, or null.
 * @param {Element} success @param {string} mechanism what it was asked for (or used with)
 */
export function tokenOf(success, mechanism) {
  const el = child(success, 'token', NS.FAST);
  const token = el && el.getAttribute('token');
  if (!token) return null;
  return { token, expiry: el.getAttribute('expiry') || null, mechanism };
}

/** Whether a stored token is past its expiry (the server would refuse it). */
export function expired(fast) {
  const t = fast && fast.expiry ? Date.parse(fast.expiry) : NaN;
  return !Number.isNaN(t) && t <= Date.now();
}

/**
 * The HT-* mechanism object (the exchange of sasl.js) for a stored token.
 * creds: {username, fast: {token, mechanism}}.
 */
export const HT_MECHANISM = {
  name: HT,
  available: (creds) => !!subtle() && !!creds.fast && creds.fast.mechanism === HT,
  start(creds) {
    const key = enc.encode(creds.fast.token);
    return {
      async initial() {
        const name = enc.encode(creds.username);
        const proof = await hmac('SHA-256', key, 'Initiator');
        const out = new Uint8Array(name.length + 1 + proof.length);
        out.set(name, 0);
        out.set(proof, name.length + 1);
        return out;
      },
      async respond() { throw new XmppError('malformed-request', 'unexpected challenge', 'sasl'); },
      async finish(data) {
        if (!data || !equal(data, await hmac('SHA-256', key, 'Responder'))) {
          throw new XmppError('server-signature-mismatch', 'the server could not prove it knows the token', 'sasl');
        }
        return { mechanism: HT, keys: null };
      },
    };
  },
};

/**
 * Run `fn` holding the lock that every use of a FAST token in this browser takes (Web Locks;
 * without them, at once).
 * @template T @param {() => Promise<T>} fn @returns {Promise<T>}
 */
export function withTokenLock(fn) {
  const locks = globalThis.navigator && navigator.locks;
  if (!locks || typeof locks.request !== 'function') return fn();
  return locks.request('xmpp.fast', () => fn());
}

/**
 * Hold the lock `name` for as long as this client wants it, if no one else has it: resolves
 * with a function that releases it, or null when another tab (or client) holds it.
 * @param {string} name
 * @returns {Promise<(() => void)|null>}
 */
export function claim(name) {
  const locks = globalThis.navigator && navigator.locks;
  if (!locks || typeof locks.request !== 'function') return Promise.resolve(() => {});
  return new Promise((resolve) => {
    locks.request(name, { ifAvailable: true }, (lock) => {
      if (!lock) {
        resolve(null);
        return undefined;
      }
      return new Promise((release) => resolve(release));
    }).catch(() => resolve(null));
  });
}
