/**
 * Invitations to rooms: XEP-0249 direct invitations (jabber:x:conference, from a user, kept
 * in offline storage when we are away) and XEP-0045 §7.8.2 mediated ones (muc#user <invite/>
 * from the room). Pending invitations are kept in localStorage per account until accepted,
 * declined or logout.
 * @module xmpp/invites
 */

import { NS, x, child, text, randomId } from './xml.js';
import { bare, resource } from './jid.js';

export class Invitations {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, {room: string, from: string, reason: string, password?: string, mediated?: boolean}>} */
    this.map = new Map();
  }

  get key() {
    return `xmpp.invitations:${this.client.bareJid}`;
  }

  /**
   * An invitation message, direct or mediated.
   * @returns {boolean} handled
   */
  onMessage(el, ctx) {
    const from = el.getAttribute('from') || '';
    const direct = child(el, 'x', NS.CONFERENCE);
    const user = child(el, 'x', NS.MUC_USER);
    const invite = child(user, 'invite', NS.MUC_USER);
    if (direct && direct.getAttribute('jid')) {
      if (ctx.carbon === 'sent' || bare(from) === this.client.bareJid) return true; // ours, to someone
      this._add({ room: bare(direct.getAttribute('jid')), from: bare(from), reason: direct.getAttribute('reason') || '', password: direct.getAttribute('password') || undefined });
      return true;
    }
    if (invite && !resource(from)) {
      this._add({ room: bare(from), from: bare(invite.getAttribute('from') || ''), reason: text(invite, 'reason', NS.MUC_USER) || '', password: text(user, 'password', NS.MUC_USER) || undefined, mediated: true });
      return true;
    }
    if (child(user, 'decline', NS.MUC_USER) && !resource(from)) return true; // §7.8.3: nothing to show
    return false;
  }

  _add(inv) {
    const room = this.client.muc.rooms.get(inv.room);
    if (room && room.joined) return; // already in
    const old = this.map.get(inv.room);
    this.map.set(inv.room, { ...old, ...inv, from: inv.from || old?.from || '' });
    this.save();
    this.client.emit('invitations', {});
  }

  /** See XmppClient.acceptInvitation: enter the room (it is bookmarked there). */
  async accept(roomJid) {
    const room = bare(roomJid);
    const inv = this.map.get(room);
    await this.client.joinRoom(room, undefined, { password: inv?.password });
    this.map.delete(room);
    this.save();
    this.client.emit('invitations', {});
  }

  /** See XmppClient.declineInvitation: a mediated invitation is declined to the inviter (§7.8.3). */
  async decline(roomJid) {
    const room = bare(roomJid);
    const inv = this.map.get(room);
    if (inv && inv.mediated && this.client.status === 'online') {
      this.client.send(x('message', { to: room, id: randomId() },
        x('x', { xmlns: NS.MUC_USER }, x('decline', { to: inv.from || undefined }))));
    }
    this.map.delete(room);
    this.save();
    this.client.emit('invitations', {});
  }

  /** Drop an invitation to a room we are in now. */
  joined(roomJid) {
    if (this.map.delete(bare(roomJid))) {
      this.save();
      this.client.emit('invitations', {});
    }
  }

  load() {
    try {
      const list = JSON.parse(localStorage.getItem(this.key) || '[]');
      for (const inv of list) if (inv && typeof inv.room === 'string') this.map.set(inv.room, inv);
    } catch { /* none */ }
  }

  save() {
    try {
      if (this.map.size) localStorage.setItem(this.key, JSON.stringify([...this.map.values()]));
      else localStorage.removeItem(this.key);
    } catch { /* storage disabled: kept in memory */ }
  }

  /** Logout: forget them. */
  clear() {
    try { localStorage.removeItem(this.key); } catch { /* disabled */ }
    this.map.clear();
  }
}
