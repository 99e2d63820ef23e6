/**
 * One-to-one chat: `<message type='chat'>` (RFC 6121 §5) with XEP-0359 origin-id, XEP-0184
 * receipts, XEP-0085 chat states, XEP-0308 corrections, XEP-0066 out-of-band links, and what
 * XEP-0280 carbons copy from the user's other clients.
 *
 * `parseMessage()` turns a message stanza into the `msg` object of the API; MUC and MAM use it.
 * @module xmpp/chat
 */

import { NS, x, child, children, text, randomId } from './xml.js';
import { bare, sameBare } from './jid.js';

const STATES = ['active', 'composing', 'paused', 'inactive', 'gone'];

/** An http(s) URL, or null (nothing else may reach an href or src). */
export function safeHttpUrl(url) {
  if (typeof url !== 'string') return null;
  const u = url.trim();
  try {
    const p = new URL(u);
    return p.protocol === 'http:' || p.protocol === 'https:' ? p.href : null;
  } catch {
    return null;
  }
}

/** XEP-0203 delay stamp of a stanza (or of its forwarding), or null. */
export function delayOf(el) {
  const d = child(el, 'delay', NS.DELAY);
  const stamp = d && d.getAttribute('stamp');
  const date = stamp ? new Date(stamp) : null;
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

/** XEP-0359 stanza-id set by `by` (the archive: own bare JID or the room), or null. */
export function stanzaIdOf(el, by) {
  const s = children(el, 'stanza-id', NS.SID).find((c) => c.getAttribute('by') === by);
  return s ? s.getAttribute('id') : null;
}

/**
 * The API's `msg` for a message stanza.
 * @param {Element} el
 * @param {{mine: boolean, with: string, stamp?: Date, archiveId?: string, nick?: string,
 *   archived?: boolean, by?: string}} ctx
 * @returns {Object} {id, from, to, with, body, stamp, mine, type, oob?, replaces?, nick?, ...}
 */
export function parseMessage(el, ctx) {
  const originId = child(el, 'origin-id', NS.SID)?.getAttribute('id') || null;
  const stanzaId = ctx.archiveId || stanzaIdOf(el, ctx.by || ctx.with) || null;
  const oobUrl = safeHttpUrl(text(child(el, 'x', NS.OOB), 'url', NS.OOB));
  const replace = child(el, 'replace', NS.CORRECT);
  const msg = {
    id: el.getAttribute('id') || originId || stanzaId || randomId(),
    originId,
    archiveId: stanzaId,
    stanzaId,
    from: el.getAttribute('from') || '',
    to: el.getAttribute('to') || '',
    with: ctx.with,
    body: text(el, 'body') ?? '',
    stamp: ctx.stamp || delayOf(el) || new Date(),
    mine: ctx.mine,
    type: el.getAttribute('type') || 'normal',
  };
  if (oobUrl) msg.oob = oobUrl;
  if (replace && replace.getAttribute('id')) msg.replaces = replace.getAttribute('id');
  if (ctx.nick !== undefined) msg.nick = ctx.nick;
  if (ctx.archived) msg.archived = true;
  return msg;
}

/** The chat state element of a message, or null. */
export function chatStateOf(el) {
  for (const c of children(el)) {
    if (c.namespaceURI === NS.CHATSTATES && STATES.includes(c.localName)) return c.localName;
  }
  return null;
}

export class Chat {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    this.lastSent = new Map(); // bare -> {id, body} of the last own message (for corrections)
    this.sent = new Map(); // id -> with, own messages waiting for a receipt or an error
  }

  /** The stanza of an outgoing message (1:1 or groupchat). */
  stanza(to, body, { type = 'chat', id = randomId(), oob, replace, receipt = true } = {}) {
    const url = oob ? safeHttpUrl(oob) : null;
    return x('message', { to, type, id },
      x('body', {}, body || url || ''),
      url ? x('x', { xmlns: NS.OOB }, x('url', {}, url)) : null,
      replace ? x('replace', { xmlns: NS.CORRECT, id: replace }) : null,
      x('origin-id', { xmlns: NS.SID, id }),
      receipt ? x('request', { xmlns: NS.RECEIPTS }) : null,
      type === 'chat' ? x('active', { xmlns: NS.CHATSTATES }) : null);
  }

  /** See XmppClient.sendMessage. */
  send(to, body, { oob } = {}) {
    const c = this.client;
    const peer = bare(to);
    const el = c.send(this.stanza(peer, body, { oob }));
    const msg = parseMessage(el, { mine: true, with: peer });
    msg.from = c.jid;
    this.lastSent.set(peer, { id: msg.id, body: msg.body });
    this._track(msg.id, peer);
    c.emit('message', { msg });
    return msg;
  }

  /** See XmppClient.correctLast. */
  correct(to, body) {
    const c = this.client;
    const peer = bare(to);
    const last = this.lastSent.get(peer);
    if (!last) return null;
    const el = c.send(this.stanza(peer, body, { replace: last.id }));
    last.body = body;
    const msg = parseMessage(el, { mine: true, with: peer });
    Object.assign(msg, { stanzaId: msg.id, id: last.id, correctedFrom: msg.id, edited: true, from: c.jid });
    delete msg.replaces;
    c.emit('correction', { with: peer, id: last.id, body, mine: true });
    return msg;
  }

  /** See XmppClient.sendChatState (XEP-0085 §5.5: no body, not stored). */
  state(to, state) {
    if (!STATES.includes(state)) return;
    this.client.send(x('message', { to: bare(to), type: 'chat', id: randomId() },
      x(state, { xmlns: NS.CHATSTATES }), x('no-store', { xmlns: NS.HINTS })));
  }

  /**
   * A (possibly carbon-copied) 1:1 message.
   * @param {Element} el
   * @param {{carbon: null|'sent'|'received'}} ctx
   * @returns {boolean} handled
   */
  onMessage(el, ctx) {
    const c = this.client;
    const type = el.getAttribute('type') || 'normal';
    if (type === 'groupchat' || type === 'headline') return false;
    const from = el.getAttribute('from') || c.domain;
    const mine = ctx.carbon === 'sent' || (sameBare(from, c.jid) && !ctx.carbon);
    const peer = mine ? bare(el.getAttribute('to') || c.bareJid) : bare(from);
    if (type === 'error') return this._error(el, peer);
    const receipt = child(el, 'received', NS.RECEIPTS);
    if (receipt) {
      if (!mine) this._receipt(peer, receipt.getAttribute('id'));
      return true;
    }
    const body = child(el, 'body');
    const state = chatStateOf(el);
    if (!mine && state && type === 'chat') c.emit('chatstate', { with: peer, state });
    if (!body && !child(el, 'x', NS.OOB)) return true;
    const msg = parseMessage(el, { mine, with: peer, by: c.bareJid });
    if (mine) msg.from = msg.from || c.jid;
    if (!mine && child(el, 'request', NS.RECEIPTS) && !ctx.carbon && el.getAttribute('id')) {
      // XEP-0184 §5.1: acknowledge; a copy (carbon) is acknowledged by the client it was for.
      c.send(x('message', { to: from, id: randomId(), type: type === 'chat' ? 'chat' : undefined },
        x('received', { xmlns: NS.RECEIPTS, id: el.getAttribute('id') })));
    }
    if (msg.replaces) {
      delete msg.replaces;
      const id = child(el, 'replace', NS.CORRECT).getAttribute('id');
      if (mine) {
        const last = this.lastSent.get(peer);
        if (last && last.id === id) last.body = msg.body;
      }
      c.emit('correction', { with: peer, id, body: msg.body, mine });
      return true;
    }
    if (mine) {
      this.lastSent.set(peer, { id: msg.id, body: msg.body });
      this._track(msg.id, peer);
    }
    c.mam.remember(msg);
    c.emit('message', { msg });
    return true;
  }

  _track(id, peer) {
    this.sent.set(id, peer);
    if (this.sent.size > 1000) this.sent.delete(this.sent.keys().next().value);
  }

  _receipt(peer, id) {
    if (!id) return;
    this.sent.delete(id);
    this.client.emit('receipt', { with: peer, id });
  }

  _error(el, peer) {
    const id = el.getAttribute('id');
    if (id && this.sent.has(id)) {
      this.sent.delete(id);
      const e = child(el, 'error');
      const reason = (e && text(e, 'text', NS.STANZAS_ERR)) || (e && e.firstElementChild?.localName) || 'error';
      this.client.emit('error', { text: `${peer}: ${reason}`, with: peer, id });
    }
    return true;
  }
}
