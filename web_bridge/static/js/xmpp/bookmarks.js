/**
 * XEP-0402 PEP Native Bookmarks: the rooms we are in, one item per room (id = room JID) on the
 * `urn:xmpp:bookmarks:1` node, with autojoin — so they come back at the next login and in the
 * user's other tabs (notifications, `urn:xmpp:bookmarks:1+notify`).
 * @module xmpp/bookmarks
 */

import { NS, x, child, children, text, submitForm } from './xml.js';
import { bare } from './jid.js';
import { XmppError } from './errors.js';

// XEP-0402 §3: the node is private and keeps every item.
const PUBLISH_OPTIONS = {
  'pubsub#persist_items': 'true',
  'pubsub#max_items': 'max',
  'pubsub#send_last_published_item': 'never',
  'pubsub#access_model': 'whitelist',
};

export class Bookmarks {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, {name: string, autojoin: boolean, nick: string}>} */
    this.items = new Map();
  }

  /** The bookmarks stored on the account. */
  async fetch() {
    const c = this.client;
    try {
      const res = await c.iq(x('iq', { type: 'get', to: c.bareJid },
        x('pubsub', { xmlns: NS.PUBSUB }, x('items', { node: NS.BOOKMARKS }))));
      const items = children(child(child(res, 'pubsub', NS.PUBSUB), 'items', NS.PUBSUB), 'item', NS.PUBSUB);
      this.items.clear();
      for (const item of items) this._read(item);
    } catch (e) {
      if (!(e instanceof XmppError) || e.condition !== 'item-not-found') throw e;
    }
    return this.items;
  }

  _read(item) {
    const conf = child(item, 'conference', NS.BOOKMARKS);
    const room = item.getAttribute('id');
    if (!conf || !room) return null;
    const b = bare(room);
    const autojoin = conf.getAttribute('autojoin');
    const entry = { name: conf.getAttribute('name') || '', autojoin: autojoin === 'true' || autojoin === '1', nick: text(conf, 'nick', NS.BOOKMARKS) || '' };
    this.items.set(b, entry);
    return [b, entry];
  }

  /** Enter the rooms marked autojoin (after login); failures are reported per room. */
  async autojoin() {
    await this.fetch();
    await Promise.all([...this.items].filter(([, b]) => b.autojoin).map(([room, b]) => this._join(room, b)));
  }

  async _join(room, b) {
    const c = this.client;
    const r = c.muc.room(room);
    if (!r.name) r.name = b.name;
    if (r.joined) return;
    c.emit('rooms', {});
    try {
      await c.muc.join(room, b.nick || undefined);
      await c.muc.refreshInfo(room);
    } catch (e) {
      c.emit('room', { jid: room, reason: (e && e.condition) || 'error' });
    }
  }

  /** Add or update a room's bookmark (autojoin). */
  async add(room, { name = '', nick = '' } = {}) {
    const c = this.client;
    const b = bare(room);
    this.items.set(b, { name, nick, autojoin: true });
    await c.iq(x('iq', { type: 'set' }, x('pubsub', { xmlns: NS.PUBSUB },
      x('publish', { node: NS.BOOKMARKS }, x('item', { id: b },
        x('conference', { xmlns: NS.BOOKMARKS, name: name || undefined, autojoin: 'true' }, nick ? x('nick', {}, nick) : null))),
      x('publish-options', {}, submitForm(`${NS.PUBSUB}#publish-options`, PUBLISH_OPTIONS)))));
  }

  /** Remove a room's bookmark. */
  async remove(room) {
    const b = bare(room);
    if (!this.items.delete(b)) return;
    await this.client.iq(x('iq', { type: 'set' }, x('pubsub', { xmlns: NS.PUBSUB },
      x('retract', { node: NS.BOOKMARKS, notify: 'true' }, x('item', { id: b })))));
  }

  /**
   * A notification of our bookmarks (from another client of ours): follow it.
   * @param {Element} items the event's <items node='urn:xmpp:bookmarks:1'>
   */
  onEvent(items) {
    const c = this.client;
    for (const item of children(items, 'item', NS.PUBSUB_EVENT)) {
      const conf = child(item, 'conference', NS.BOOKMARKS);
      const room = item.getAttribute('id');
      if (!conf || !room) continue;
      const b = bare(room);
      const autojoin = ['true', '1'].includes(conf.getAttribute('autojoin'));
      const entry = { name: conf.getAttribute('name') || '', autojoin, nick: text(conf, 'nick', NS.BOOKMARKS) || '' };
      this.items.set(b, entry);
      const r = c.muc.rooms.get(b);
      if (r && entry.name && r.name !== entry.name) {
        r.name = entry.name;
        c.emit('room', { jid: b });
      }
      if (autojoin && !(r && r.joined)) this._join(b, entry);
    }
    for (const retract of children(items, 'retract', NS.PUBSUB_EVENT)) {
      const b = bare(retract.getAttribute('id') || '');
      this.items.delete(b);
      if (c.muc.rooms.has(b)) c.muc.leave(b);
    }
  }
}
