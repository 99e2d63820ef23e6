/**
 * XEP-0388: Extensible SASL Profile (SASL2), with what rides in its <authenticate/>:
 * XEP-0386 Bind 2 (a resource bound, carbons and stream management enabled inline),
 * XEP-0198 resumption (<resume/>) and XEP-0484 FAST (fast.js) — a whole session in one
 * round trip, and no stream restart.
 *
 *     <authenticate mechanism>             <success>
 *       <initial-response/>                  <additional-data/>   (SCRAM's v=, FAST's hash)
 *       <user-agent id/>                     <authorization-identifier/>  (the full JID)
 *       <request-token/> | <fast count/>     <bound><enabled xmlns=sm/></bound> | <resumed/>
 *       <resume xmlns=sm/>                   <token/>             (a new FAST token)
 *       <bind><tag/><enable/>...</bind>    </success> <stream:features/>
 *
 * The mechanisms are the exchange objects of sasl.js and fast.js.
 * @module xmpp/sasl2
 */

import { NS, x, is, child, children, text } from './xml.js';
import { XmppError, elementError } from './errors.js';
import { toBase64, payload, offeredNames } from './sasl.js';

/** The tag of our resources (XEP-0386 §3.2.1: the server adds a random part). */
export const BIND_TAG = 'web';

/** SASL2's <authentication/> in the stream features, or null. @param {Element} features */
export function authentication(features) {
  return child(features, 'authentication', NS.SASL2);
}

/** The (upper-case) names of the mechanisms <authentication/> offers. */
export function mechanisms(auth) {
  return offeredNames(auth, NS.SASL2);
}

/**
 * What <authentication><inline/> offers: {bind: Set of inline feature vars | null, sm: bool}.
 * @param {Element} auth
 */
export function inlineOffers(auth) {
  const inline = child(auth, 'inline', NS.SASL2);
  const bind = child(inline, 'bind', NS.BIND2);
  const vars = bind
    ? new Set(children(child(bind, 'inline', NS.BIND2), 'feature', NS.BIND2).map((f) => f.getAttribute('var')))
    : null;
  return { bind: vars, sm: !!child(inline, 'sm', NS.SM) };
}

/**
 * XEP-0386 §3.2: <bind/> with our tag and the features to enable inline (carbons, stream
 * management with resumption) where offered.
 * @param {Set<string>} vars what the server can enable inline
 */
export function bindRequest(vars) {
  return x('bind', { xmlns: NS.BIND2 },
    x('tag', {}, BIND_TAG),
    vars.has(NS.CARBONS) ? x('enable', { xmlns: NS.CARBONS }) : null,
    vars.has(NS.SM) ? x('enable', { xmlns: NS.SM, resume: 'true' }) : null);
}

const OUTCOMES = ['challenge', 'success', 'failure', 'continue'];

/** One step: send `node`, wait for <challenge/>, <success/> or <failure/>. */
async function step(conn, node) {
  const reply = conn.next((el) => el.namespaceURI === NS.SASL2 && OUTCOMES.includes(el.localName));
  conn.send(node);
  const el = await reply;
  if (el.localName === 'failure') throw elementError(el, NS.SASL, 'sasl');
  if (el.localName === 'continue') { // §2.6.3: tasks we do not know
    conn.send(x('abort', { xmlns: NS.SASL2 }));
    throw new XmppError('feature-not-implemented', 'the server asks for a task this client cannot do');
  }
  return el;
}

/**
 * Authenticate with SASL2 on a fresh stream.
 *
 * `onSuccess(success)` runs as soon as <success/> is received — before anything that waits
 * (the check of the server's proof): the stanzas after it (a resumed session's, say) are
 * counted by stream management only if it is set up by then.
 *
 * @param {import('./connection.js').Connection} conn
 * @param {{mechanism: Object, creds: Object, agent: Object, extras: Array,
 *          onSuccess?: (success: Element) => void}} options
 * @returns {Promise<{mechanism: string, keys: Object|null, success: Element, features: Element,
 *                    jid: string|null}>} `jid`: the <authorization-identifier/>
 * @throws {XmppError} the <failure/>'s condition (type 'sasl'), 'server-signature-mismatch', ...
 */
export async function authenticate(conn, { mechanism, creds, agent, extras = [], onSuccess }) {
  const exchange = mechanism.start(creds);
  const initial = await exchange.initial();
  let el = await step(conn, x('authenticate', { xmlns: NS.SASL2, mechanism: mechanism.name },
    initial === null ? null : x('initial-response', {}, toBase64(initial)), agent, extras));
  while (el.localName === 'challenge') {
    let response;
    try {
      response = await exchange.respond(payload(el));
    } catch (e) {
      conn.send(x('abort', { xmlns: NS.SASL2 }));
      throw e;
    }
    el = await step(conn, x('response', { xmlns: NS.SASL2 }, toBase64(response)));
  }
  // <success/>: no awaiting anything else until the session's state is set up.
  const success = el;
  const features = conn.next((f) => is(f, 'features', NS.STREAM)); // §2.6.1: no restart
  features.catch(() => {}); // a failed check below ends the connection (and this wait)
  if (onSuccess) onSuccess(success);
  const result = await exchange.finish(payload(child(success, 'additional-data', NS.SASL2)));
  return {
    ...result,
    success,
    features: await features,
    jid: (text(success, 'authorization-identifier', NS.SASL2) || '').trim() || null,
  };
}
