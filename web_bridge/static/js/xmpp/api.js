/**
 * The feature methods of `XmppClient` (webapp.md): contacts, chat, history, groups, profile,
 * files. Each forwards to its feature file; client.js holds the session and the dispatch.
 * @module xmpp/api
 */

import { NS, x } from './xml.js';
import { bare, complete, valid } from './jid.js';
import { XmppError } from './errors.js';

/** @param {typeof EventTarget} Base */
export const ApiMixin = (Base) => class extends Base {
  _jid(input) {
    const jid = complete(input, this.domain);
    if (!valid(jid)) throw new XmppError('jid-malformed', `not an address: ${input}`);
    return jid;
  }

  _isRoom(jid) {
    return this.muc.rooms.has(bare(jid));
  }

  // -- contacts ---------------------------------------------------------------------------------

  /**
   * Add a contact: roster item, subscription request with `note` as its <status/>, and
   * pre-approval of theirs (RFC 6121 §3.1, §3.4).
   * @param {string} jid "bob" or "bob@domain"
   * @param {string} [note]
   */
  async addContact(jid, note) { return this.roster.add(this._jid(jid), note); }

  /** Approve a request and ask for theirs back (RFC 6121 §3.1.3-§3.1.5). @param {string} jid */
  async acceptRequest(jid) { return this.roster.accept(this._jid(jid)); }

  /** Refuse a request (RFC 6121 §3.2). @param {string} jid */
  async declineRequest(jid) { return this.roster.decline(this._jid(jid)); }

  /** Remove a contact and both subscriptions (RFC 6121 §2.5). @param {string} jid */
  async removeContact(jid) { return this.roster.remove(this._jid(jid)); }

  /**
   * Set our presence (RFC 6121 §4.2): show ('away', 'xa', 'dnd', 'chat' or '' for online).
   * @param {string} [show] @param {string} [status]
   */
  setPresence(show = '', status = '') {
    this.send(x('presence', {}, show ? x('show', {}, show) : null, status ? x('status', {}, status) : null,
      this.profile.capsElement()));
  }

  /** A name to show for a JID: roster name, nick, else the JID. @param {string} jid */
  displayName(jid) {
    const b = bare(jid);
    const c = this.contacts.get(b);
    if (b === this.bareJid) return this.profile.nick || b;
    return (c && (c.name || c.nick)) || this.profile.people.get(b)?.nick || b;
  }

  // -- 1:1 chat ---------------------------------------------------------------------------------

  /**
   * Send a chat message (to a room: a groupchat message); the 'message' event fires for it too.
   * @param {string} to @param {string} body
   * @param {{oob?: string}} [options] oob: a URL (e.g. from upload()) sent as XEP-0066 link
   * @returns {Object} msg
   */
  sendMessage(to, body, options = {}) {
    if (this._isRoom(to)) return this.sendGroupMessage(to, body, options);
    return this.chat.send(this._jid(to), body, options);
  }

  /**
   * XEP-0308: correct our last message to `to` (a contact or a room); 'correction' fires.
   * @returns {Object|null} msg (id = the corrected message's id), null if nothing to correct
   */
  correctLast(to, body) {
    if (this._isRoom(to)) return this.muc.correct(to, body);
    return this.chat.correct(this._jid(to), body);
  }

  /** The body and id of our last message to `to`, or null. */
  lastSent(to) {
    return this.chat.lastSent.get(bare(to)) || null;
  }

  /** XEP-0085: 'composing', 'paused', 'active', 'inactive' or 'gone'. */
  sendChatState(to, state) {
    if (this.status !== 'online') return;
    if (this._isRoom(to)) this.muc.state(to, state);
    else this.chat.state(this._jid(to), state);
  }

  /**
   * XEP-0313: a page of the history with `jid`, newest page first, oldest message first in it.
   * @param {string} jid
   * @param {{before?: string, max?: number}} [options] before: the `first` of the previous
   *   page (a message id of it works too)
   * @returns {Promise<{messages: Object[], complete: boolean, first: string|null, last: string|null}>}
   */
  async history(jid, options = {}) {
    if (this._isRoom(jid)) return this.roomHistory(jid, options);
    return this.mam.history(this._jid(jid), options);
  }

  // -- groups -----------------------------------------------------------------------------------

  /**
   * Create a members-only, persistent, archived room with a unique address, enter it and
   * bookmark it.
   * @param {{name: string, description?: string, whois?: 'moderators'|'anyone'}} options
   * @returns {Promise<string>} the room JID
   */
  async createRoom(options) { return this.mucAdmin.create(options); }

  /**
   * Enter a room (and bookmark it with autojoin).
   * @param {string} roomJid @param {string} [nick] @param {{password?: string}} [options]
   * @returns {Promise<string>} the room JID
   */
  async joinRoom(roomJid, nick, { password } = {}) {
    const room = bare(roomJid);
    await this.muc.join(room, nick, { password });
    await this.muc.refreshInfo(room);
    this.invites.joined(room);
    const r = this.muc.room(room);
    const b = this.bookmarks.items.get(room);
    if (!b || b.name !== r.name || !b.autojoin) await this.bookmarks.add(room, { name: r.name, nick: r.nick }).catch(() => {});
    return room;
  }

  /** Leave a room and remove its bookmark. @param {string} roomJid */
  async leaveRoom(roomJid) {
    const room = bare(roomJid);
    this.muc.leave(room);
    await this.bookmarks.remove(room).catch(() => {});
  }

  /**
   * Invite `jid` to a room: member affiliation (muc#admin) and a XEP-0249 direct invitation.
   * @param {string} roomJid @param {string} jid @param {string} [reason]
   */
  async invite(roomJid, jid, reason) { return this.mucAdmin.invite(bare(roomJid), this._jid(jid), reason); }

  /** Kick an occupant (role none, XEP-0045 §8.2). @param {string} roomJid @param {string} nick */
  async kick(roomJid, nick, reason) { return this.mucAdmin.kick(roomJid, nick, reason); }

  /** Change a room's name (owner; XEP-0045 §10.2). @param {string} roomJid @param {string} name */
  async renameRoom(roomJid, name) { return this.mucAdmin.rename(roomJid, name); }

  /** Grant or revoke an affiliation ('member', 'admin', 'owner', 'outcast', 'none'). */
  async setAffiliation(roomJid, jid, affiliation, reason) {
    return this.mucAdmin.setAffiliation(roomJid, this._jid(jid), affiliation, reason);
  }

  /**
   * Send a groupchat message; the 'message' event fires for it at once (the room's echo is
   * not shown again).
   * @returns {Object} msg
   */
  sendGroupMessage(roomJid, body, options = {}) { return this.muc.send(roomJid, body, options); }

  /** A page of a room's archive (XEP-0313 on the room JID); like history(). */
  async roomHistory(roomJid, options = {}) { return this.mam.roomHistory(bare(roomJid), options); }

  /** Enter the room of an invitation. @param {string} roomJid */
  async acceptInvitation(roomJid) { return this.invites.accept(roomJid); }

  /** Drop an invitation (a mediated one is declined to the inviter). @param {string} roomJid */
  async declineInvitation(roomJid) { return this.invites.decline(roomJid); }

  // -- profile and files ------------------------------------------------------------------------

  /** XEP-0172 nick (PEP) and vCard NICKNAME. @param {string} nick */
  async setNickname(nick) { return this.profile.setNickname(nick); }

  /**
   * XEP-0084 avatar (scaled down if too big for PEP); the server puts it in the vCard too.
   * @param {Blob} file an image
   * @returns {Promise<string>} its data: URL
   */
  async setAvatar(file) { return this.profile.setAvatar(file); }

  /**
   * XEP-0363: upload a file; send the URL with sendMessage(to, url, {oob: url}).
   * @param {File|Blob} file
   * @returns {Promise<string>} the GET URL
   */
  async upload(file) { return this.uploads.upload(file); }

  /** XEP-0199 ping of the server (or `to`); resolves when answered. */
  async ping(to) {
    await this.iq(x('iq', { type: 'get', to: to || this.domain }, x('ping', { xmlns: NS.PING })));
  }
};
