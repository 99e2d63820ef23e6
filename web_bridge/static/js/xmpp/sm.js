/**
 * XEP-0198: Stream Management — acks both ways and resumption, also across a page reload;
 * enabled and resumed on their own or inside a SASL2 login (XEP-0386 §3.2, XEP-0388 §2.6.1).
 *
 * The state that resumption needs ({id, h, jid} plus what the server has not acknowledged
 * yet) is written to sessionStorage as it changes, so a reloaded page continues the same
 * session: its `h` tells the server which stanzas it had handled (§5), the stanzas it sent
 * that the server had not acknowledged are sent again.
 * @module xmpp/sm
 */

import { NS, x, is, serialize } from './xml.js';

const KEY = 'xmpp.sm';
const MOD = 2 ** 32;
const REQUEST_DELAY = 200; // ms: one <r/> for a burst of stanzas
const ACK_TIMEOUT = 45000; // ms without an answer to <r/>: the connection is dead

export class StreamManagement {
  /**
   * @param {import('./connection.js').Connection} conn
   * @param {Storage|null} storage sessionStorage (null: no persistence)
   */
  constructor(conn, storage) {
    this.conn = conn;
    this.storage = storage;
    this.id = null; // SM-ID when resumable
    this.max = 0;
    this.h = 0; // stanzas handled from the server
    this.acked = 0; // our stanzas the server acknowledged
    this.queue = []; // markup of our stanzas not yet acknowledged
    this.jid = null;
    this._request = null;
    this._deadline = null;
  }

  /** Whether a resumable session is known (in memory or stored). */
  get resumable() {
    return !!this.id;
  }

  /**
   * §3: enable with resumption after bind; the connection then counts stanzas.
   * @param {string} jid the bound full JID, stored with the SM-ID
   * @returns {Promise<boolean>} whether stream management is on
   */
  async enable(jid) {
    const reply = this.conn.next((el) => el.namespaceURI === NS.SM && ['enabled', 'failed'].includes(el.localName));
    this.conn.sendRaw(serialize(x('enable', { xmlns: NS.SM, resume: 'true' })));
    this._start(jid); // counted from here (§4: after <enable/>)
    return this.enabled(await reply);
  }

  /**
   * XEP-0386 §3.2: stream management enabled inside Bind 2. Call as soon as the <success/>
   * holding it is received: stanzas are counted from there.
   * @param {Element} el the <enabled/> or <failed/> of <bound/>
   * @param {string} jid the bound full JID
   */
  enabledInline(el, jid) {
    this._start(jid);
    return this.enabled(el);
  }

  _start(jid) {
    this.h = 0;
    this.acked = 0;
    this.queue = [];
    this.jid = jid;
    this.conn.sm = this;
  }

  /** The server's <enabled/> or <failed/>; returns whether stream management is on. */
  enabled(el) {
    if (el.localName !== 'enabled') {
      this.conn.sm = null;
      this.id = null;
      return false;
    }
    this.id = el.getAttribute('resume') === 'true' || el.getAttribute('resume') === '1'
      ? el.getAttribute('id') : null;
    this.max = parseInt(el.getAttribute('max') || '0', 10) || 0;
    this.save();
    return true;
  }

  /** §5: the <resume/> that asks for the stored (or in-memory) session. */
  resumeRequest() {
    return x('resume', { xmlns: NS.SM, previd: this.id, h: this.h % MOD });
  }

  /**
   * §5: resume the stored (or in-memory) session on this authenticated stream.
   * @returns {Promise<boolean>} true when resumed; false when the server no longer has it
   * @throws {XmppError} on anything but a <failed/> (e.g. the connection dropped)
   */
  async resume() {
    if (!this.id) return false;
    const reply = this.conn.next((el) => el.namespaceURI === NS.SM && ['resumed', 'failed'].includes(el.localName));
    this.conn.sendRaw(serialize(this.resumeRequest()));
    return this.resumed(await reply);
  }

  /**
   * The server's answer to <resume/> (on its own, or inside a SASL2 <success/>, XEP-0388
   * §2.6.1): on <resumed/> the connection counts again and what the server had not
   * acknowledged is sent again; on <failed/> the session is forgotten.
   * @param {Element|null} el <resumed/> or <failed/>
   * @returns {boolean} whether the session was resumed
   */
  resumed(el) {
    if (!is(el, 'resumed', NS.SM)) {
      this.forget();
      return false;
    }
    this._acknowledge(parseInt(el.getAttribute('h') || '0', 10));
    this.conn.sm = this;
    for (const xml of this.queue) this.conn.sendRaw(xml); // §5: not handled yet: again
    this.save();
    this._scheduleRequest();
    return true;
  }

  /** Load what a previous page of this tab stored; returns its JID or null. */
  load() {
    try {
      const raw = this.storage && this.storage.getItem(KEY);
      if (!raw) return null;
      const s = JSON.parse(raw);
      if (!s || typeof s.id !== 'string' || typeof s.jid !== 'string') return null;
      Object.assign(this, { id: s.id, h: s.h | 0, acked: s.acked | 0, queue: Array.isArray(s.queue) ? s.queue : [], jid: s.jid, max: s.max | 0 });
      return s.jid;
    } catch {
      return null;
    }
  }

  /** Write the state for a reload of this tab. */
  save() {
    if (!this.storage || !this.id) return;
    try {
      this.storage.setItem(KEY, JSON.stringify({ id: this.id, h: this.h, acked: this.acked, queue: this.queue, jid: this.jid, max: this.max }));
    } catch { /* storage full or disabled: resumption after reload is lost, nothing else */ }
  }

  /** Forget the session (logout, or it can no longer be resumed). */
  forget() {
    this.id = null;
    this.conn.sm = null;
    this._stopTimers();
    if (this.storage) {
      try { this.storage.removeItem(KEY); } catch { /* disabled */ }
    }
  }

  /** Stanzas never acknowledged, to send again on a new session (markup). */
  takeQueue() {
    const q = this.queue;
    this.queue = [];
    return q;
  }

  // -- hooks called by the connection ---------------------------------------------------------

  /** One of our stanzas went out (or waits for the connection). */
  sent(el, xml) {
    this.queue.push(xml);
    this.save();
    this._scheduleRequest();
  }

  /** One stanza from the server was handled. */
  handled() {
    this.h = (this.h + 1) % MOD;
    this.save();
  }

  /** <r/> and <a/> (§4). */
  nonza(el) {
    if (el.localName === 'r') {
      if (this.conn.connected) this.conn.sendRaw(serialize(x('a', { xmlns: NS.SM, h: this.h })));
    } else if (el.localName === 'a') {
      this._acknowledge(parseInt(el.getAttribute('h') || '0', 10));
      clearTimeout(this._deadline);
      this._deadline = null;
      this.save();
    }
  }

  /** The connection closed: timers stop; the state stays for resumption. */
  suspend() {
    this._stopTimers();
  }

  _acknowledge(h) {
    const n = ((h - this.acked) % MOD + MOD) % MOD;
    if (n > this.queue.length) return; // more than we sent: ignore rather than lose track
    this.queue.splice(0, n);
    this.acked = h;
  }

  _scheduleRequest() {
    if (this._request || !this.conn.connected) return;
    this._request = setTimeout(() => {
      this._request = null;
      if (!this.queue.length || !this.conn.connected || this.conn.sm !== this) return;
      this.conn.sendRaw(serialize(x('r', { xmlns: NS.SM })));
      if (!this._deadline) {
        this._deadline = setTimeout(() => {
          this._deadline = null;
          if (this.queue.length && this.conn.ws) this.conn.ws.close(); // reconnect and resume
        }, ACK_TIMEOUT);
      }
    }, REQUEST_DELAY);
  }

  _stopTimers() {
    clearTimeout(this._request);
    clearTimeout(this._deadline);
    this._request = this._deadline = null;
  }
}
