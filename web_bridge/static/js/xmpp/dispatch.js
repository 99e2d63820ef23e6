/**
 * Incoming stanzas to the features: IQ requests to their handlers (RFC 6120 §8.2.3: every
 * get/set gets an answer, service-unavailable when nobody handles it, §8.4), messages through
 * archive results, carbons (XEP-0280, unwrapped), PEP events, invitations, rooms, then 1:1
 * chat; presence to rooms, then the roster.
 * @module xmpp/dispatch
 */

import { NS, x, child } from './xml.js';
import { XmppError } from './errors.js';

/**
 * Handle one stanza; a failing handler is logged as a warning, the stream goes on.
 * @param {import('./client.js').XmppClient} client
 * @param {Element} el
 */
export function dispatch(client, el) {
  try {
    if (el.localName === 'iq') onIq(client, el);
    else if (el.localName === 'message') onMessage(client, el);
    else if (el.localName === 'presence') onPresence(client, el);
  } catch (e) {
    console.warn('xmpp: failed to handle a stanza', e);
  }
}

function onIq(client, iq) {
  const type = iq.getAttribute('type');
  if (type !== 'get' && type !== 'set') return; // a response nobody waits for any more
  const payload = iq.firstElementChild;
  const handler = payload && client.iqHandlers.get(`${type} ${payload.namespaceURI} ${payload.localName}`);
  if (!handler) {
    iqError(client, iq, new XmppError('service-unavailable'));
    return;
  }
  let result;
  try {
    result = handler(iq) || null;
  } catch (e) {
    iqError(client, iq, e instanceof XmppError ? e : new XmppError('internal-server-error'));
    return;
  }
  client.send(x('iq', { type: 'result', id: iq.getAttribute('id'), to: iq.getAttribute('from') || undefined }, result));
}

function iqError(client, iq, e) {
  const type = { forbidden: 'auth', 'not-authorized': 'auth', 'bad-request': 'modify' }[e.condition] || 'cancel';
  client.send(x('iq', { type: 'error', id: iq.getAttribute('id'), to: iq.getAttribute('from') || undefined },
    x('error', { type }, x(e.condition, { xmlns: NS.STANZAS_ERR }))));
}

function onMessage(client, el) {
  if (client.mam.onMessage(el)) return;
  const ctx = { carbon: null };
  const from = el.getAttribute('from');
  if (!from || from === client.bareJid) { // XEP-0280 §11: carbons come from our own account only
    const carbon = child(el, 'sent', NS.CARBONS) || child(el, 'received', NS.CARBONS);
    if (carbon) {
      const inner = child(child(carbon, 'forwarded', NS.FORWARD), 'message');
      if (!inner) return;
      el = inner;
      ctx.carbon = carbon.localName;
    }
  }
  if (client.profile.onMessage(el)) return;
  if (client.invites.onMessage(el, ctx)) return;
  if (client.muc.onMessage(el)) return;
  client.chat.onMessage(el, ctx);
}

function onPresence(client, el) {
  if (client.muc.onPresence(el)) return;
  client.roster.onPresence(el);
}
