/**
 * XEP-0045 owner and admin actions: creating a configured room (§10.1.3, muc#owner form),
 * renaming it (§10.2), making someone a member and inviting them (§9.3 muc#admin, XEP-0249
 * direct invitation; XEP-0045 §7.8.2 mediated invitation when we may not grant membership),
 * kicking an occupant (§8.2).
 * @module xmpp/muc_admin
 */

import { NS, x, child, readForm, randomId } from './xml.js';
import { bare } from './jid.js';
import { XmppError } from './errors.js';

/** muc#roomconfig fields we set when they are in the form (XEP-0045 §15.5.3). */
function roomSettings({ name, description, whois = 'moderators' }) {
  return {
    'muc#roomconfig_roomname': name || '',
    'muc#roomconfig_roomdesc': description || '',
    'muc#roomconfig_persistentroom': true,
    'muc#roomconfig_membersonly': true,
    'muc#roomconfig_publicroom': false,
    'muc#roomconfig_whois': whois,
    'muc#roomconfig_enablearchiving': true, // Prosody's and ours
    'muc#roomconfig_enablelogging': true, // ejabberd's, logged for the archive
    'mam': true,
  };
}

export class MucAdmin {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
  }

  /** The room's configuration form (§10.2). */
  async configForm(room) {
    const res = await this.client.iq(x('iq', { type: 'get', to: room }, x('query', { xmlns: NS.MUC_OWNER })));
    return child(child(res, 'query', NS.MUC_OWNER), 'x', NS.DATA);
  }

  /**
   * Submit the form with `changes` over its current values; fields the form does not have
   * are left out (each server has its own set).
   */
  async configure(room, changes) {
    const form = readForm(await this.configForm(room));
    const fields = [];
    for (const [name, f] of form) {
      if (f.type === 'fixed') continue;
      let values = f.values;
      if (Object.prototype.hasOwnProperty.call(changes, name)) {
        const v = changes[name];
        if (f.type === 'list-single' && f.options.length && !f.options.includes(String(v))) continue;
        values = [v === true ? '1' : v === false ? '0' : String(v)];
      }
      fields.push(x('field', { var: name, type: f.type === 'hidden' ? 'hidden' : undefined },
        values.map((v) => x('value', {}, v))));
    }
    await this.client.iq(x('iq', { type: 'set', to: room },
      x('query', { xmlns: NS.MUC_OWNER }, x('x', { xmlns: NS.DATA, type: 'submit' }, fields))));
  }

  /** See XmppClient.createRoom. */
  async create({ name, description, whois } = {}) {
    const c = this.client;
    const service = await c.muc.service();
    const room = `${randomId(12)}@${service}`;
    const nick = c.muc.defaultNick();
    const st = await c.muc.join(room, nick);
    if (!st.has('201')) {
      c.muc.leave(room);
      throw new XmppError('conflict', 'that room exists already');
    }
    try {
      await this.configure(room, roomSettings({ name, description, whois }));
    } catch (e) {
      // §10.1.3: a room that cannot be configured is given up.
      c.iq(x('iq', { type: 'set', to: room }, x('query', { xmlns: NS.MUC_OWNER },
        x('x', { xmlns: NS.DATA, type: 'cancel' })))).catch(() => {});
      c.muc.rooms.delete(room);
      c.emit('rooms', {});
      throw e;
    }
    const r = c.muc.room(room);
    r.name = name || '';
    r.description = description || '';
    await c.bookmarks.add(room, { name: r.name, nick: r.nick }).catch(() => {});
    c.emit('room', { jid: room });
    c.emit('rooms', {});
    return room;
  }

  /** See XmppClient.renameRoom. */
  async rename(roomJid, name) {
    const c = this.client;
    const room = bare(roomJid);
    await this.configure(room, { 'muc#roomconfig_roomname': name });
    const r = c.muc.room(room);
    r.name = name;
    await c.bookmarks.add(room, { name, nick: r.nick }).catch(() => {});
    c.emit('room', { jid: room });
    c.emit('rooms', {});
  }

  /** See XmppClient.invite. */
  async invite(roomJid, jid, reason) {
    const c = this.client;
    const room = bare(roomJid);
    const to = bare(jid);
    let mediated = false;
    try { // §9.3: a member may enter a members-only room, now and later
      await c.iq(x('iq', { type: 'set', to: room }, x('query', { xmlns: NS.MUC_ADMIN },
        x('item', { jid: to, affiliation: 'member' }, reason ? x('reason', {}, reason) : null))));
    } catch (e) {
      if (!(e instanceof XmppError) || !['forbidden', 'not-allowed'].includes(e.condition)) throw e;
      mediated = true; // not an admin: the room admits the invitee if it allows invitations
    }
    if (mediated) {
      c.send(x('message', { to: room, id: randomId() }, x('x', { xmlns: NS.MUC_USER },
        x('invite', { to }, reason ? x('reason', {}, reason) : null))));
      return;
    }
    // XEP-0249: goes to the user's account, stored offline if they are away.
    c.send(x('message', { to, id: randomId() },
      x('x', { xmlns: NS.CONFERENCE, jid: room, reason: reason || undefined })));
  }

  /** See XmppClient.kick (§8.2: role none). */
  async kick(roomJid, nick, reason) {
    await this.client.iq(x('iq', { type: 'set', to: bare(roomJid) }, x('query', { xmlns: NS.MUC_ADMIN },
      x('item', { nick, role: 'none' }, reason ? x('reason', {}, reason) : null))));
  }

  /** Change someone's affiliation (§9-§10: member, admin, owner, outcast, none). */
  async setAffiliation(roomJid, jid, affiliation, reason) {
    await this.client.iq(x('iq', { type: 'set', to: bare(roomJid) }, x('query', { xmlns: NS.MUC_ADMIN },
      x('item', { jid: bare(jid), affiliation }, reason ? x('reason', {}, reason) : null))));
  }
}
