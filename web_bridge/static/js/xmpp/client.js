/**
 * `XmppClient`: the browser app's XMPP client (the API of webapp.md). An EventTarget; every
 * event is a CustomEvent whose `detail` is described in webapp.md.
 *
 * It composes the feature files: connection.js (RFC 7395), sasl.js (RFC 6120 SASL), sasl2.js
 * (XEP-0388 SASL2 with XEP-0386 Bind 2), fast.js (XEP-0484 tokens), sm.js (XEP-0198),
 * session.js (what is stored, snapshot, bind), login.js (the login steps), roster.js, chat.js, mam.js, muc.js,
 * muc_admin.js, bookmarks.js, invites.js, profile.js, upload.js. Stanzas are dispatched here.
 *
 * Logging in, where the server offers SASL2: one <authenticate/> — SCRAM with the password
 * (asking for a FAST token) or the FAST token, the browser's <user-agent/>, Bind 2 (tag
 * 'web', carbons and stream management enabled inline) or, after a reload or a lost
 * connection, <resume/> (with Bind 2 beside it, for when the session is gone). The token is
 * what "remember me" keeps (localStorage; else sessionStorage, for this tab); each use counts
 * up, a new token in <success/> replaces it, a refused one is dropped (the login screen
 * follows), logout revokes it (<fast invalidate='true'/>). Without SASL2: RFC 6120 SASL,
 * bind, then <enable/> or <resume/>, and the SCRAM keys are what is kept (never the password).
 *
 * Several tabs of one browser share the remembered token and so the client id; Bind 2 ends
 * the other sessions of a client id (XEP-0386 §3.2). The tab that holds a Web Lock for the
 * account uses Bind 2; the others bind the RFC 6120 way and, if ended all the same, connect
 * again.
 * @module xmpp/client
 */

import { NS, x, child, parse } from './xml.js';
import { bare, complete, sameBare } from './jid.js';
import { XmppError } from './errors.js';
import { Connection, discoverWebSocket } from './connection.js';
import { expired } from './fast.js';
import { StreamManagement } from './sm.js';
import { bind, clearStored, loadLogin, offersSm, saveSnapshot } from './session.js';
import { Roster } from './roster.js';
import { Chat } from './chat.js';
import { Mam } from './mam.js';
import { Muc } from './muc.js';
import { MucAdmin } from './muc_admin.js';
import { Bookmarks } from './bookmarks.js';
import { Invitations } from './invites.js';
import { Profile } from './profile.js';
import { Upload } from './upload.js';
import { ApiMixin } from './api.js';
import { LoginMixin } from './login.js';
import { dispatch } from './dispatch.js';

export { XmppError };

const FATAL_STREAM_ERRORS = new Set(['conflict', 'not-authorized', 'policy-violation', 'host-unknown', 'invalid-namespace']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function defaultUrl() {
  const secure = globalThis.location && location.protocol === 'https:';
  return `${secure ? 'wss' : 'ws'}://${location.host}/xmpp-websocket`;
}

export class XmppClient extends LoginMixin(ApiMixin(EventTarget)) {
  /**
   * @param {{url?: string, domain?: string, timeout?: number}} [options] defaults: this page's
   *   host (the WebSocket URL from /.well-known/host-meta.json when there is one)
   */
  constructor({ url, domain, timeout } = {}) {
    super();
    this.domain = domain || location.hostname;
    this._url = url || null;
    this.conn = new Connection({ url: url || defaultUrl(), domain: this.domain, timeout });
    this.conn.onStanza = (el) => dispatch(this, el);
    this.conn.addEventListener('closed', (e) => this._closed(e.detail));
    let session = null;
    try { session = globalThis.sessionStorage; } catch { /* disabled */ }
    this.sm = new StreamManagement(this.conn, session);
    this.roster = new Roster(this);
    this.chat = new Chat(this);
    this.mam = new Mam(this);
    this.muc = new Muc(this);
    this.mucAdmin = new MucAdmin(this);
    this.bookmarks = new Bookmarks(this);
    this.invites = new Invitations(this);
    this.profile = new Profile(this);
    this.uploads = new Upload(this);
    /** @type {'offline'|'connecting'|'online'} */
    this.status = 'offline';
    this.jid = null;
    this.username = null;
    /** The SASL mechanism of the last login (e.g. 'SCRAM-SHA-256', 'HT-SHA-256-NONE'). */
    this.mechanism = null;
    // How to log in again: {username, fast, remember} (a FAST token), {username, keys,
    // remember} (SCRAM keys) or, with neither, {username, password} (memory only).
    this._creds = null;
    this._bind2 = null; // releases the Web Lock of this account's Bind 2 (see the top)
    this._wantOnline = false;
    this._reconnecting = false;
    /** Resolves when what follows a login in the background (profile, rooms) is done. */
    this.ready = Promise.resolve();
    /** IQ requests we answer: 'type namespace name' -> (iq) => payload (or throws XmppError) */
    this.iqHandlers = new Map([
      ['set jabber:iq:roster query', (iq) => this.roster.onPush(iq)],
      [`get ${NS.DISCO_INFO} query`, (iq) => this.profile.discoInfo(iq)],
      [`get ${NS.PING} ping`, () => null],
    ]);
    this._epoch = 0; // a login or logout starts a new one: older reconnections stop
    this._unloading = false;
    if (typeof globalThis.addEventListener === 'function') {
      // A page going away keeps its session for the next page (no reconnection from here).
      globalThis.addEventListener('pagehide', () => { this._unloading = true; this._saveNow(); });
      globalThis.addEventListener('pageshow', (e) => {
        this._unloading = false;
        if (e.persisted && this._wantOnline && !this.conn.connected) this._background(this._reconnect());
      });
    }
  }

  /** The bare JID of the account (null before login). */
  get bareJid() { return this.jid ? bare(this.jid) : (this.username ? `${this.username}@${this.domain}` : null); }
  /** @type {Map<string, Object>} */ get contacts() { return this.roster.contacts; }
  /** @type {Map<string, {jid: string, note: string, nick?: string}>} */ get requests() { return this.roster.requests; }
  /** @type {Map<string, Object>} */ get rooms() { return this.muc.rooms; }
  /** @type {Map<string, {room: string, from: string, reason: string}>} */ get invitations() { return this.invites.map; }

  /** Dispatch a CustomEvent. @param {string} name @param {Object} [detail] */
  emit(name, detail = {}) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
    if (name !== 'status' && name !== 'message' && name !== 'chatstate' && name !== 'error') this._saveSoon();
  }

  /** Send a stanza (a tree from xml.js `x()` or an element). */
  send(node) { return this.conn.send(node); }
  /** Send an IQ and wait for the response (rejects with XmppError). */
  iq(node, timeout) { return this.conn.iq(node, timeout); }

  _setStatus(status, reason) {
    if (this.status === status && !reason) return;
    this.status = status;
    this.emit('status', reason ? { status, reason } : { status });
  }

  async _discover() {
    if (this._url) return;
    this._url = this.conn.url = (await discoverWebSocket()) || this.conn.url;
  }

  // -- account ----------------------------------------------------------------------------------

  /**
   * XEP-0077: create an account on a stream of its own, before authentication.
   * @param {string} username @param {string} password
   * @throws {XmppError} 'conflict' (taken), 'not-acceptable', 'not-allowed', ...
   */
  async register(username, password) {
    await this._discover();
    const conn = new Connection({ url: this.conn.url, domain: this.domain, timeout: this.conn.timeout });
    try {
      await conn.open();
      await conn.iq(x('iq', { type: 'set' }, x('query', { xmlns: NS.REGISTER },
        x('username', {}, String(username).trim()), x('password', {}, password))));
    } finally {
      await conn.close().catch(() => {});
    }
  }

  /**
   * Log in: SASL (SASL2 with Bind 2 where offered), stream management, roster, carbons,
   * initial presence.
   * @param {string} username the local part (or a full bare JID of this domain)
   * @param {string} password
   * @param {{remember?: boolean}} [options] remember: keep the login (a FAST token, or SCRAM
   *   keys where the server has no FAST — never the password) in localStorage for restore()
   *   in a later visit; else in sessionStorage, for a reload of this tab
   * @throws {XmppError} 'not-authorized' for a wrong password, 'remote-connection-failed', ...
   */
  async login(username, password, { remember = false } = {}) {
    if (this.status !== 'offline') await this.logout();
    const name = bare(complete(username, this.domain)).split('@')[0];
    this.username = name;
    this._creds = null;
    this._epoch++;
    this._wantOnline = true;
    this._setStatus('connecting');
    try {
      this.invites.load();
      await this._connect({ password: String(password), remember });
    } catch (e) {
      this._fail(e);
      throw e;
    }
  }

  /**
   * After a reload or in a new visit: log in with the stored token (or keys) and resume this
   * tab's session (XEP-0198), else start a new one.
   * @returns {Promise<boolean>} whether the client is online; false (and the stored login
   *   forgotten) when the server refuses it
   */
  async restore() {
    if (this.status === 'online') return true;
    if (this.status === 'connecting') return false;
    const stored = loadLogin(this.domain);
    if (!stored) return false;
    if (stored.fast && expired(stored.fast)) {
      clearStored();
      return false;
    }
    this.username = stored.username;
    this._creds = stored.fast
      ? { username: stored.username, fast: stored.fast, remember: stored.remember }
      : { username: stored.username, keys: stored.keys, remember: stored.remember };
    this._epoch++;
    this._wantOnline = true;
    this._setStatus('connecting');
    const smJid = this.sm.load();
    if (smJid && !sameBare(smJid, `${stored.username}@${this.domain}`)) this.sm.forget();
    try {
      this.invites.load();
      await this._connect({ resume: true });
      return true;
    } catch (e) {
      if (e instanceof XmppError && e.type === 'sasl') {
        clearStored();
        this._creds = null;
      }
      this._fail(e);
      return false;
    }
  }

  /**
   * Unavailable presence, close the stream, revoke the FAST token (XEP-0484 §6), forget
   * everything stored.
   */
  async logout() {
    this._epoch++;
    this._wantOnline = false;
    const creds = this._creds;
    const close = async () => {
      try {
        if (this.conn.connected && this.status === 'online') {
          this.send(x('presence', { type: 'unavailable' }));
          await this.conn.close();
        }
      } catch { /* closing anyway */ }
    };
    await Promise.allSettled([close(), creds && creds.fast ? this._invalidate(creds) : null]);
    this.conn.abort();
    this.sm.forget();
    this.conn.failPending(new XmppError('disconnected', 'logged out'));
    clearStored();
    this.invites.clear();
    this._creds = null;
    this._release();
    this.jid = this.username = this.mechanism = null;
    this._setStatus('offline');
    this._reset();
  }

  _reset() {
    this.roster = new Roster(this);
    this.chat = new Chat(this);
    this.mam = new Mam(this);
    this.muc = new Muc(this);
    this.bookmarks = new Bookmarks(this);
    this.invites = new Invitations(this);
    this.profile = new Profile(this);
    this.uploads = new Upload(this);
    this.emit('contacts');
    this.emit('requests');
    this.emit('rooms');
    this.emit('invitations');
  }

  _fail(e) {
    this._wantOnline = false;
    this._release();
    this.conn.abort();
    this._setStatus('offline', (e && (e.text || e.condition || e.message)) || 'error');
  }

  // -- session steps ----------------------------------------------------------------------------

  // Logging in (_connect, SASL1/SASL2, FAST, Bind 2): login.js.

  /** XEP-0198 §5: the session `jid` goes on (its state is set up by sm.js). */
  _resumed(jid, fresh) {
    this.jid = this.conn.jid = jid;
    this._setStatus('online');
    if (fresh) {
      this._background(this.roster.fetch());
      this.emit('rooms');
      this.emit('requests');
      this.emit('profile', { jid: this.bareJid });
    }
  }

  _giveUp() {
    this.sm.forget();
    this.conn.failPending(new XmppError('disconnected', 'the session ended'));
  }

  /**
   * A new session: bind, stream management (unless Bind 2 did them: `jid`, `smDone`), then
   * what a session starts with.
   * @param {{features: Element, jid?: string|null, leftover?: string[]|null, smDone?: boolean,
   *          carbons?: boolean}} session
   */
  async _newSession({ features, jid = null, leftover = null, smDone = false, carbons = false }) {
    if (!leftover) {
      leftover = this.sm.takeQueue();
      this.sm.forget();
    }
    const wasIn = this.jid !== null;
    this.jid = this.conn.jid = jid || await bind(this.conn, features);
    if (!smDone && offersSm(features)) await this.sm.enable(this.jid);
    this.roster.resetPresence();
    await this.roster.fetch();
    if (!carbons) await this.iq(x('iq', { type: 'set' }, x('enable', { xmlns: NS.CARBONS }))).catch(() => {});
    this.send(x('presence', {}, this.profile.capsElement()));
    this._setStatus('online');
    for (const xml of leftover) { // messages the old session never delivered (XEP-0198 §5)
      const el = parse(xml);
      if (el && el.localName === 'message' && child(el, 'body')) this.send(el);
    }
    if (!wasIn) { // rooms known from a snapshot are not entered in this session yet
      for (const r of this.muc.rooms.values()) Object.assign(r, { joined: false, role: 'none' }).occupants.clear();
    }
    const profile = this.profile.load();
    const rooms = wasIn ? this.muc.rejoin() : this.bookmarks.autojoin();
    this._background(profile);
    this._background(rooms);
    this.ready = Promise.allSettled([profile, rooms]).then(() => undefined);
  }

  _background(promise) {
    promise.catch((e) => {
      if (!(e instanceof XmppError)) console.warn('xmpp:', e); // a bug, not a condition
    });
  }

  _closed({ clean, error }) {
    this.sm.suspend();
    if (clean || !this._wantOnline || this._unloading || this.status !== 'online') return;
    if (error && error.type === 'stream' && error.condition === 'conflict' && !this._bind2
        && this._creds && this._creds.fast) {
      // Another tab of this browser bound with Bind 2 and so ended this (RFC 6120 bound)
      // session of the same client id: a new one.
      this.sm.forget();
      this._background(this._reconnect());
      return;
    }
    if (error && error.type === 'stream' && FATAL_STREAM_ERRORS.has(error.condition)) {
      this._wantOnline = false;
      this._release();
      this.sm.forget();
      if (error.condition === 'not-authorized') clearStored();
      this._setStatus('offline', error.text || error.condition);
      return;
    }
    this._background(this._reconnect());
  }

  /** Reconnect with backoff and resume the session, else start a new one. */
  async _reconnect() {
    if (this._reconnecting) return;
    this._reconnecting = true;
    const epoch = this._epoch;
    const current = () => this._wantOnline && epoch === this._epoch && !this._unloading;
    this._setStatus('connecting', 'connection lost');
    let delay = 500;
    try {
      while (current()) {
        try {
          await this._connect({ resume: true });
          return;
        } catch (e) {
          if (!current()) break;
          this.conn.abort();
          if (e instanceof XmppError && e.type === 'sasl') {
            clearStored();
            this._fail(e);
            return;
          }
          await sleep(delay * (0.75 + Math.random() / 2));
          delay = Math.min(delay * 2, 30000);
        }
      }
    } finally {
      this._reconnecting = false;
    }
  }

  // -- the snapshot for a reload ----------------------------------------------------------------

  _saveSoon() {
    if (this._saveTimer || !this.jid) return;
    this._saveTimer = setTimeout(() => this._saveNow(), 300);
  }

  _saveNow() {
    clearTimeout(this._saveTimer);
    this._saveTimer = null;
    if (this.jid && this.status !== 'offline') saveSnapshot(this);
  }
}
