/**
 * SASL mechanisms (RFC 4422): SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802, RFC 7677) with
 * WebCrypto, and PLAIN (RFC 4616) only where WebCrypto is missing; and the RFC 6120 §6
 * framing (<auth/>, <challenge/>, <response/>, <success/>). XEP-0388 SASL2 (sasl2.js) and
 * XEP-0484 FAST (fast.js) run the same mechanism objects in their own framing.
 *
 * SCRAM runs from the password (PBKDF2 gives the salted password) or, only with servers that
 * offer no FAST tokens, from stored keys (ClientKey/ServerKey with the salt and iteration
 * count they were made with: the password itself is never kept). The server's signature is
 * always verified.
 *
 * A mechanism is `{name, available(creds), start(creds)}`; `start` gives an exchange:
 * `initial()` -> bytes|null, `respond(challenge)` -> bytes, `finish(additionalData)` ->
 * `{mechanism, keys}` (it verifies what the server proved). `MECHANISMS` lists them in order
 * of preference; `run(conn, creds)` does the RFC 6120 exchange.
 * @module xmpp/sasl
 */

import { NS, x, is, child } from './xml.js';
import { XmppError, elementError } from './errors.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** @param {Uint8Array} bytes @returns {string} */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** @param {string} b64 @returns {Uint8Array} */
export function fromBase64(b64) {
  const s = atob(b64.replace(/\s+/g, ''));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** RFC 8265 OpaqueString, as the server prepares passwords: spaces mapped, NFC. */
function preparePassword(password) {
  return String(password).replace(/[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g, ' ')
    .normalize('NFC');
}

/** RFC 5802 §5.1: '=' and ',' in the user name are escaped. */
function saslName(name) {
  return String(name).normalize('NFC').replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** WebCrypto's SubtleCrypto, or null (e.g. a page that is not a secure context). */
export const subtle = () => (globalThis.crypto && globalThis.crypto.subtle) || null;

/** HMAC (RFC 2104) with WebCrypto. @returns {Promise<Uint8Array>} */
export async function hmac(hash, key, data) {
  const k = await subtle().importKey('raw', key, { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', k, typeof data === 'string' ? enc.encode(data) : data));
}

async function digest(hash, data) {
  return new Uint8Array(await subtle().digest(hash, data));
}

async function pbkdf2(hash, password, salt, iterations, bits) {
  const k = await subtle().importKey('raw', enc.encode(password), 'PBKDF2', false, ['deriveBits']);
  return new Uint8Array(await subtle().deriveBits({ name: 'PBKDF2', hash, salt, iterations }, k, bits));
}

function xor(a, b) {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** Constant-time comparison of two byte arrays. */
export function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** The attributes of a SCRAM message: "r=...,s=...,i=..." -> {r, s, i}. */
function attributes(message) {
  const out = {};
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out[part[0]] = part.slice(2);
  }
  return out;
}

/** One RFC 6120 step: send `node`, wait for the server's challenge, success or failure. */
async function step(conn, node) {
  const reply = conn.next((el) => el.namespaceURI === NS.SASL
    && ['challenge', 'success', 'failure'].includes(el.localName));
  conn.send(node);
  const el = await reply;
  if (el.localName === 'failure') throw elementError(el, NS.SASL, 'sasl');
  return el;
}

/** The base64 content of a SASL element as bytes ('=' is empty, RFC 6120 §6.4.2). */
export function payload(el) {
  const t = ((el && el.textContent) || '').trim();
  return t && t !== '=' ? fromBase64(t) : new Uint8Array(0);
}

function scram(name, hash, bits) {
  const mech = {
    name,
    available: (creds) => !!subtle()
      && (creds.password !== undefined || (!!creds.keys && creds.keys.mechanism === name)),
    start(creds) {
      // creds.nonce: only for test vectors (RFC 5802 §5, RFC 7677 §3)
      const nonce = creds.nonce || toBase64(crypto.getRandomValues(new Uint8Array(18)));
      const gs2 = 'n,,'; // no channel binding: the browser cannot see the TLS channel
      const first = `n=${saslName(creds.username)},r=${nonce}`;
      let authMessage = null;
      let serverKey = null;
      let clientKey = null;
      let salt = null;
      let iterations = 0;
      let verifier = null; // v= of a last challenge (RFC 6120 §6.3.10)
      return {
        initial: async () => enc.encode(gs2 + first),
        async respond(challenge) {
          if (authMessage) { // the server's signature came as a challenge: answered empty
            verifier = challenge;
            return new Uint8Array(0);
          }
          const serverFirst = dec.decode(challenge);
          const { r, s, i } = attributes(serverFirst);
          iterations = parseInt(i, 10);
          if (!r || !r.startsWith(nonce) || r === nonce || !s || !(iterations > 0)) {
            throw new XmppError('malformed-request', 'bad SCRAM challenge', 'sasl');
          }
          salt = s;
          if (creds.password !== undefined) {
            const salted = await pbkdf2(hash, preparePassword(creds.password), fromBase64(s), iterations, bits);
            clientKey = await hmac(hash, salted, 'Client Key');
            serverKey = await hmac(hash, salted, 'Server Key');
          } else {
            if (creds.keys.salt !== s || creds.keys.iterations !== iterations) {
              // The password changed (or the keys were made elsewhere): they cannot work.
              throw new XmppError('credentials-expired', 'the stored login is no longer valid', 'sasl');
            }
            clientKey = fromBase64(creds.keys.clientKey);
            serverKey = fromBase64(creds.keys.serverKey);
          }
          const withoutProof = `c=${toBase64(enc.encode(gs2))},r=${r}`;
          authMessage = `${first},${serverFirst},${withoutProof}`;
          const storedKey = await digest(hash, clientKey);
          const proof = xor(clientKey, await hmac(hash, storedKey, authMessage));
          return enc.encode(`${withoutProof},p=${toBase64(proof)}`);
        },
        async finish(data) {
          const final = data && data.length ? data : verifier;
          const v = authMessage && final ? attributes(dec.decode(final)).v : null;
          if (!v || !equal(fromBase64(v), await hmac(hash, serverKey, authMessage))) {
            throw new XmppError('server-signature-mismatch', 'the server could not prove it knows the password', 'sasl');
          }
          return {
            mechanism: name,
            keys: { mechanism: name, clientKey: toBase64(clientKey), serverKey: toBase64(serverKey), salt, iterations },
          };
        },
      };
    },
    run: (conn, creds) => run(conn, mech, creds),
  };
  return mech;
}

const PLAIN = {
  name: 'PLAIN',
  available: (creds) => !subtle() && creds.password !== undefined,
  start: (creds) => ({
    initial: async () => enc.encode(`\0${creds.username}\0${preparePassword(creds.password)}`),
    async respond() { throw new XmppError('malformed-request', 'unexpected challenge', 'sasl'); },
    finish: async () => ({ mechanism: 'PLAIN', keys: null }),
  }),
  run: (conn, creds) => run(conn, PLAIN, creds),
};

/** The mechanisms in order of preference (FAST's HT-* are in fast.js). */
export const MECHANISMS = [scram('SCRAM-SHA-256', 'SHA-256', 256), scram('SCRAM-SHA-1', 'SHA-1', 160), PLAIN];

/** The names of the mechanisms in a <mechanisms/> or <authentication/> element, upper case. */
export function offeredNames(parent, ns) {
  return new Set(Array.from((parent || { children: [] }).children)
    .filter((m) => is(m, 'mechanism', ns)).map((m) => m.textContent.trim().toUpperCase()));
}

/** The preferred mechanism of those offered that can run with `creds`, or null. */
export function choose(offered, creds) {
  return MECHANISMS.find((m) => offered.has(m.name) && m.available(creds)) || null;
}

/** RFC 6120 §6.4: one mechanism's exchange in <auth/>, <response/>s, then <success/>. */
async function run(conn, mech, creds) {
  const exchange = mech.start(creds);
  const initial = await exchange.initial();
  let el = await step(conn, x('auth', { xmlns: NS.SASL, mechanism: mech.name },
    initial === null ? null : (toBase64(initial) || '=')));
  while (el.localName === 'challenge') {
    let response;
    try {
      response = await exchange.respond(payload(el));
    } catch (e) {
      conn.send(x('abort', { xmlns: NS.SASL }));
      throw e;
    }
    el = await step(conn, x('response', { xmlns: NS.SASL }, toBase64(response)));
  }
  return exchange.finish(payload(el));
}

/**
 * Authenticate on a fresh stream (RFC 6120 §6.4).
 * @param {import('./connection.js').Connection} conn
 * @param {Element} features the stream features offered
 * @param {{username: string, password?: string, keys?: Object}} creds a password, or the
 *   SCRAM keys of an earlier login
 * @returns {Promise<{mechanism: string, keys: Object|null}>} keys to log in again without the password
 * @throws {XmppError} 'not-authorized', 'server-signature-mismatch', 'credentials-expired',
 *   'invalid-mechanism' (nothing offered that we can use), ...
 */
export async function authenticate(conn, features, creds) {
  const mech = choose(offeredNames(child(features, 'mechanisms', NS.SASL), NS.SASL), creds);
  if (!mech) {
    throw new XmppError(creds.keys ? 'credentials-expired' : 'invalid-mechanism',
      'no usable login mechanism', 'sasl');
  }
  return run(conn, mech, creds);
}
