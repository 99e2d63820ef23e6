/**
 * XEP-0045 Multi-User Chat, the occupant's side: entering (§7.2, no history: it comes from the
 * room's archive), occupants from presence (§7.2.3 muc#user items), groupchat messages,
 * subject (§8.1), configuration changes (status 104 → the room's name is read again, §10.2.1),
 * leaving, kicks and bans (§9). Owner and admin actions are in muc_admin.js, bookmarks in
 * bookmarks.js, invitations in invites.js.
 * @module xmpp/muc
 */

import { NS, x, child, children, text, readForm, randomId } from './xml.js';
import { bare, resource, local } from './jid.js';
import { XmppError, stanzaError } from './errors.js';
import { parseMessage, chatStateOf } from './chat.js';

const JOIN_TIMEOUT = 20000;

/** The status codes of a muc#user <x/>. */
function codes(el) {
  return new Set(children(child(el, 'x', NS.MUC_USER), 'status', NS.MUC_USER).map((s) => s.getAttribute('code')));
}

export class Muc {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, Object>} room JID -> room (see the API) */
    this.rooms = new Map();
    this.joining = new Map(); // room -> {nick, resolve, reject, timer}
    this.echo = new Set(); // ids of our groupchat messages shown already, until the room reflects them
    this._service = null;
  }

  /** The room state for `jid`, made if new. */
  room(jid) {
    const b = bare(jid);
    let r = this.rooms.get(b);
    if (!r) {
      r = { jid: b, name: '', description: '', subject: '', nick: '', joined: false, affiliation: 'none', role: 'none', occupants: new Map() };
      this.rooms.set(b, r);
    }
    return r;
  }

  /** The MUC service: found by disco#items on the domain, else conference.<domain>. */
  async service() {
    if (this._service) return this._service;
    const c = this.client;
    try {
      const res = await c.iq(x('iq', { type: 'get', to: c.domain }, x('query', { xmlns: NS.DISCO_ITEMS })));
      for (const item of children(child(res, 'query', NS.DISCO_ITEMS), 'item', NS.DISCO_ITEMS)) {
        const jid = item.getAttribute('jid');
        if (!jid || jid.includes('@')) continue;
        const info = await c.iq(x('iq', { type: 'get', to: jid }, x('query', { xmlns: NS.DISCO_INFO }))).catch(() => null);
        const identities = children(child(info, 'query', NS.DISCO_INFO), 'identity', NS.DISCO_INFO);
        if (identities.some((i) => i.getAttribute('category') === 'conference')) return (this._service = jid);
      }
    } catch { /* fall back on the usual name */ }
    return (this._service = `conference.${c.domain}`);
  }

  /** The nick to use in rooms: our nick or the local part of our JID. */
  defaultNick() {
    return this.client.profile.nick || local(this.client.bareJid) || 'me';
  }

  /**
   * Enter a room (§7.2.1); resolves with the self-presence's status codes.
   * A taken nick (conflict) is retried with a suffix.
   * @returns {Promise<Set<string>>}
   */
  async join(roomJid, nick, { password, tries = 3 } = {}) {
    const b = bare(roomJid);
    const want = nick || this.defaultNick();
    for (let i = 0; ; i++) {
      const n = i === 0 ? want : `${want}${Math.floor(Math.random() * 900 + 100)}`;
      try {
        return await this._enter(b, n, password);
      } catch (e) {
        if (!(e instanceof XmppError) || e.condition !== 'conflict' || i + 1 >= tries) throw e;
      }
    }
  }

  _enter(room, nick, password) {
    const c = this.client;
    const old = this.joining.get(room);
    if (old) old.reject(new XmppError('conflict', 'joined again'));
    return new Promise((resolve, reject) => {
      const done = (fn) => (v) => { clearTimeout(entry.timer); this.joining.delete(room); fn(v); };
      const entry = { nick, resolve: done(resolve), reject: done(reject) };
      entry.timer = setTimeout(() => entry.reject(new XmppError('timeout', 'the room did not answer')), JOIN_TIMEOUT);
      this.joining.set(room, entry);
      c.send(x('presence', { to: `${room}/${nick}` },
        x('x', { xmlns: NS.MUC }, x('history', { maxstanzas: '0' }), password ? x('password', {}, password) : null),
        c.profile.capsElement()));
    });
  }

  /** Name, description and subject from the room's disco#info (§6.4, muc#roominfo). */
  async refreshInfo(roomJid) {
    const r = this.room(roomJid);
    try {
      const res = await this.client.iq(x('iq', { type: 'get', to: r.jid }, x('query', { xmlns: NS.DISCO_INFO })));
      const query = child(res, 'query', NS.DISCO_INFO);
      const identity = child(query, 'identity', NS.DISCO_INFO);
      const form = readForm(children(query, 'x', NS.DATA)[0] || null);
      const value = (name) => (form.get(name)?.values[0]) ?? null;
      r.name = value('muc#roomconfig_roomname') || identity?.getAttribute('name') || r.name;
      r.description = value('muc#roominfo_description') ?? r.description;
      r.subject = value('muc#roominfo_subject') || r.subject;
    } catch { /* a room we may not see: keep what we know */ }
    this.client.emit('room', { jid: r.jid });
    this.client.emit('rooms', {});
  }

  /** Leave a room (§7.14). */
  leave(roomJid) {
    const r = this.rooms.get(bare(roomJid));
    if (!r) return;
    if (r.joined && this.client.status === 'online') {
      this.client.send(x('presence', { to: `${r.jid}/${r.nick}`, type: 'unavailable' }));
    }
    this.rooms.delete(r.jid);
    this.client.emit('rooms', {});
  }

  /**
   * Presence from a room or an occupant.
   * @returns {boolean} handled
   */
  onPresence(el) {
    const from = el.getAttribute('from') || '';
    const b = bare(from);
    const joining = this.joining.get(b);
    const r = this.rooms.get(b);
    const muc = child(el, 'x', NS.MUC_USER);
    if (!joining && !r) return !!muc; // a room we are not in: nothing for the roster
    const nick = resource(from);
    const type = el.getAttribute('type');
    if (type === 'error') {
      if (joining && nick === joining.nick) joining.reject(stanzaError(el));
      return true;
    }
    if (!nick) return true;
    const st = codes(el);
    const item = child(muc, 'item', NS.MUC_USER);
    const room = r || this.room(b);
    const self = st.has('110') || (joining && nick === joining.nick && item?.getAttribute('jid') === this.client.jid);
    const occupant = {
      nick,
      jid: item?.getAttribute('jid') ? bare(item.getAttribute('jid')) : null,
      role: item?.getAttribute('role') || 'none',
      affiliation: item?.getAttribute('affiliation') || 'none',
      show: type === 'unavailable' ? 'offline' : (text(el, 'show') || 'online'),
    };
    if (type === 'unavailable') {
      room.occupants.delete(nick);
      if (st.has('303') && item?.getAttribute('nick')) { // §7.6: a nick change
        const renamed = { ...occupant, nick: item.getAttribute('nick'), show: 'online' };
        room.occupants.set(renamed.nick, renamed);
        if (self) room.nick = renamed.nick;
      } else if (self) {
        this._left(room, st, child(muc, 'destroy', NS.MUC_USER));
        return true;
      }
    } else {
      room.occupants.set(nick, occupant);
      if (self) {
        Object.assign(room, { nick, joined: true, role: occupant.role, affiliation: occupant.affiliation });
        if (joining) joining.resolve(st);
      }
    }
    this.client.emit('room', { jid: room.jid });
    if (self) this.client.emit('rooms', {});
    return true;
  }

  /** We are out of the room: kicked (307), banned (301), removed (321, 322), destroyed. */
  _left(room, st, destroy) {
    room.joined = false;
    room.occupants.clear();
    room.role = 'none';
    let reason = 'left';
    if (st.has('307')) reason = 'kicked';
    else if (st.has('301')) reason = 'banned';
    else if (st.has('321') || st.has('322')) reason = 'removed';
    else if (destroy) reason = 'destroyed';
    else if (st.has('332')) reason = 'shutdown';
    if (reason === 'banned' || reason === 'destroyed' || reason === 'removed') {
      room.affiliation = 'none';
      this.client.bookmarks.remove(room.jid).catch(() => {});
    }
    this.client.emit('room', { jid: room.jid, reason });
    this.client.emit('rooms', {});
  }

  /**
   * A message from a room we are in (groupchat, subject, status, errors).
   * @returns {boolean} handled
   */
  onMessage(el) {
    const from = el.getAttribute('from') || '';
    const room = this.rooms.get(bare(from));
    if (!room) return false;
    const type = el.getAttribute('type');
    const c = this.client;
    if (type === 'error') {
      const id = el.getAttribute('id');
      if (id && this.echo.delete(id)) c.emit('error', { text: `${room.name || room.jid}: ${stanzaError(el).condition}`, with: room.jid, id });
      return true;
    }
    if (type !== 'groupchat') return type === 'chat' && !!resource(from); // private messages: not supported
    const nick = resource(from) || '';
    const subject = child(el, 'subject');
    if (subject && !child(el, 'body')) { // §8.1: the subject, also sent last on entering
      room.subject = subject.textContent;
      c.emit('room', { jid: room.jid });
      return true;
    }
    if (!nick && codes(el).has('104')) { // §10.2.1: the configuration changed
      this.refreshInfo(room.jid);
      return true;
    }
    const mine = nick === room.nick;
    const state = chatStateOf(el);
    if (state && !mine && nick) c.emit('chatstate', { with: room.jid, state, nick });
    if (!child(el, 'body') && !child(el, 'x', NS.OOB)) return true;
    const msg = parseMessage(el, { mine, with: room.jid, nick, by: room.jid });
    c.mam.remember(msg);
    if (mine && this.echo.delete(msg.originId || msg.id)) return true; // shown when sent
    if (msg.replaces) {
      const id = msg.replaces;
      if (mine) {
        const last = c.chat.lastSent.get(room.jid);
        if (last && last.id === id) last.body = msg.body;
      }
      c.emit('correction', { with: room.jid, id, body: msg.body, nick, mine });
      return true;
    }
    if (mine) c.chat.lastSent.set(room.jid, { id: msg.id, body: msg.body });
    c.emit('message', { msg });
    return true;
  }

  /** See XmppClient.sendGroupMessage. */
  send(roomJid, body, { oob } = {}) {
    const c = this.client;
    const room = this.rooms.get(bare(roomJid));
    if (!room || !room.joined) throw new XmppError('not-acceptable', 'not in this room');
    const id = randomId();
    this._echo(id);
    const el = c.send(c.chat.stanza(room.jid, body, { type: 'groupchat', id, oob, receipt: false }));
    const msg = parseMessage(el, { mine: true, with: room.jid, nick: room.nick });
    c.chat.lastSent.set(room.jid, { id, body: msg.body });
    c.emit('message', { msg });
    return msg;
  }

  /** XEP-0308 in a room. */
  correct(roomJid, body) {
    const c = this.client;
    const room = this.rooms.get(bare(roomJid));
    const last = c.chat.lastSent.get(bare(roomJid));
    if (!room || !room.joined || !last) return null;
    const id = randomId();
    this._echo(id);
    const el = c.send(c.chat.stanza(room.jid, body, { type: 'groupchat', id, replace: last.id, receipt: false }));
    last.body = body;
    const msg = parseMessage(el, { mine: true, with: room.jid, nick: room.nick });
    Object.assign(msg, { stanzaId: id, id: last.id, correctedFrom: id, edited: true });
    delete msg.replaces;
    c.emit('correction', { with: room.jid, id: last.id, body, nick: room.nick, mine: true });
    return msg;
  }

  /** XEP-0085 in a room (§5.5 of XEP-0085: groupchat, not stored). */
  state(roomJid, state) {
    const room = this.rooms.get(bare(roomJid));
    if (!room || !room.joined) return;
    this.client.send(x('message', { to: room.jid, type: 'groupchat', id: randomId() },
      x(state, { xmlns: NS.CHATSTATES }), x('no-store', { xmlns: NS.HINTS })));
  }

  _echo(id) {
    this.echo.add(id);
    if (this.echo.size > 500) this.echo.delete(this.echo.values().next().value);
  }

  /** After a new session (not a resumed one): enter again the rooms we were in. */
  async rejoin() {
    const rooms = [...this.rooms.values()].filter((r) => r.joined);
    await Promise.all(rooms.map(async (r) => {
      r.joined = false;
      r.occupants.clear();
      try {
        await this.join(r.jid, r.nick);
      } catch (e) {
        this.client.emit('room', { jid: r.jid, reason: e.condition || 'error' });
      }
    }));
  }
}
