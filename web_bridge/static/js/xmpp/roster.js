/**
 * RFC 6121: the roster (§2: get, set, push), presence subscriptions (§3: requests with a
 * <status/> note, approval, pre-approval, refusal) and the contacts' presence (§4).
 * @module xmpp/roster
 */

import { NS, x, child, children, text } from './xml.js';
import { bare, resource, sameBare } from './jid.js';
import { XmppError } from './errors.js';

const OFFLINE = Object.freeze({ online: false, show: 'offline', status: '' });
const SHOW_RANK = { chat: 0, online: 1, away: 2, xa: 3, dnd: 4 };

export class Roster {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, Object>} bare -> contact (see the API) */
    this.contacts = new Map();
    /** @type {Map<string, {jid: string, note: string, nick?: string}>} */
    this.requests = new Map();
    this.resources = new Map(); // bare -> Map(resource -> {show, status, priority})
  }

  contact(jid) {
    const b = bare(jid);
    let c = this.contacts.get(b);
    if (!c) {
      c = { jid: b, name: '', subscription: 'none', ask: null, presence: { ...OFFLINE }, nick: '', avatarUrl: null, groups: [] };
      this.client.profile.decorate(c);
      this.contacts.set(b, c);
    }
    return c;
  }

  /** RFC 6121 §2.2: the whole roster, after login. */
  async fetch() {
    const res = await this.client.iq(x('iq', { type: 'get' }, x('query', { xmlns: NS.ROSTER })));
    const items = children(child(res, 'query', NS.ROSTER), 'item', NS.ROSTER);
    const seen = new Set();
    for (const item of items) seen.add(this._item(item));
    for (const b of [...this.contacts.keys()]) if (!seen.has(b)) this.contacts.delete(b);
    this.client.emit('contacts', {});
  }

  /** §2.1.6: a roster push (from our own account only, §2.1.6 security). */
  onPush(iq) {
    const from = iq.getAttribute('from');
    if (from && from !== this.client.bareJid) throw new XmppError('forbidden', 'not your roster');
    for (const item of children(child(iq, 'query', NS.ROSTER), 'item', NS.ROSTER)) this._item(item);
    this.client.emit('contacts', {});
  }

  _item(item) {
    const b = bare(item.getAttribute('jid'));
    if (item.getAttribute('subscription') === 'remove') {
      this.contacts.delete(b);
      this.resources.delete(b);
      return null;
    }
    const c = this.contact(b);
    c.name = item.getAttribute('name') || '';
    c.subscription = item.getAttribute('subscription') || 'none';
    c.ask = item.getAttribute('ask') || null;
    c.groups = children(item, 'group', NS.ROSTER).map((g) => g.textContent);
    c.presence = this._best(this.resources.get(b));
    if (c.subscription === 'both' || c.subscription === 'from') {
      if (this.requests.delete(b)) this.client.emit('requests', {});
    }
    return b;
  }

  /**
   * Presence from a contact (not a room): availability or a subscription change.
   * @param {Element} el
   * @returns {boolean} handled
   */
  onPresence(el) {
    const c = this.client;
    const from = el.getAttribute('from');
    if (!from) return false;
    const b = bare(from);
    const type = el.getAttribute('type');
    if (type === 'subscribe') {
      const existing = this.contacts.get(b);
      if (existing && (existing.subscription === 'from' || existing.subscription === 'both')) {
        // Already approved (e.g. by another client): say so again (RFC 6121 §3.1.3).
        c.send(x('presence', { to: b, type: 'subscribed' }));
        return true;
      }
      this.requests.set(b, { jid: b, note: text(el, 'status') || '', nick: text(el, 'nick', NS.NICK) || '' });
      c.emit('requests', {});
      return true;
    }
    if (type === 'unsubscribe' || type === 'subscribed' || type === 'unsubscribed') {
      if (type === 'unsubscribe' && this.requests.delete(b)) c.emit('requests', {});
      c.emit('contacts', {});
      return true;
    }
    if (type === 'error' || type === 'probe') return true;
    if (sameBare(b, c.bareJid)) return true; // our other resources
    const res = resource(from) || '';
    let byRes = this.resources.get(b);
    if (type === 'unavailable') {
      if (byRes) byRes.delete(res);
    } else {
      if (!byRes) this.resources.set(b, byRes = new Map());
      byRes.set(res, {
        show: text(el, 'show') || 'online',
        status: text(el, 'status') || '',
        priority: parseInt(text(el, 'priority') || '0', 10) || 0,
      });
    }
    if (this.contacts.has(b)) { // others (e.g. directed presence) are remembered, not listed
      this.contact(b).presence = this._best(byRes);
      c.emit('presence', { jid: b });
      c.emit('contacts', {});
    }
    c.profile.onPresence(b, el, type);
    return true;
  }

  /** The presence a contact shows: its most available resource (priority, then show). */
  _best(byRes) {
    let best = null;
    for (const p of (byRes ? byRes.values() : [])) {
      if (!best || p.priority > best.priority
          || (p.priority === best.priority && (SHOW_RANK[p.show] ?? 5) < (SHOW_RANK[best.show] ?? 5))) best = p;
    }
    return best ? { online: true, show: best.show, status: best.status } : { ...OFFLINE };
  }

  /** Every contact offline (the session was lost and a new one starts). */
  resetPresence() {
    this.resources.clear();
    for (const c of this.contacts.values()) c.presence = { ...OFFLINE };
  }

  async _set(jid, attrs = {}) {
    await this.client.iq(x('iq', { type: 'set' },
      x('query', { xmlns: NS.ROSTER }, x('item', { jid, ...attrs }))));
  }

  /** See XmppClient.addContact. */
  async add(jid, note) {
    const c = this.client;
    const b = bare(jid);
    const existing = this.contacts.get(b);
    await this._set(b, existing?.name ? { name: existing.name } : {});
    const nick = c.profile.nick;
    c.send(x('presence', { to: b, type: 'subscribe' },
      note ? x('status', {}, note) : null,
      nick ? x('nick', { xmlns: NS.NICK }, nick) : null));
    // §3.4: pre-approve their subscription to us, so they need not ask.
    if (!existing || (existing.subscription !== 'from' && existing.subscription !== 'both')) {
      c.send(x('presence', { to: b, type: 'subscribed' }));
    }
  }

  /** See XmppClient.acceptRequest. */
  async accept(jid) {
    const c = this.client;
    const b = bare(jid);
    if (!this.contacts.has(b)) await this._set(b);
    c.send(x('presence', { to: b, type: 'subscribed' }));
    const contact = this.contacts.get(b);
    if (!contact || (contact.subscription !== 'to' && contact.subscription !== 'both')) {
      c.send(x('presence', { to: b, type: 'subscribe' }, c.profile.nick ? x('nick', { xmlns: NS.NICK }, c.profile.nick) : null));
    }
    this.requests.delete(b);
    c.emit('requests', {});
  }

  /** See XmppClient.declineRequest. */
  async decline(jid) {
    const b = bare(jid);
    this.client.send(x('presence', { to: b, type: 'unsubscribed' }));
    this.requests.delete(b);
    this.client.emit('requests', {});
  }

  /** See XmppClient.removeContact (§2.5: the server cancels both subscriptions). */
  async remove(jid) {
    const b = bare(jid);
    await this._set(b, { subscription: 'remove' });
    this.contacts.delete(b);
    this.resources.delete(b);
    this.client.emit('contacts', {});
  }
}
