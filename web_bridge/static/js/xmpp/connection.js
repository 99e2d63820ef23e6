/**
 * RFC 7395: XMPP over WebSocket. One `Connection` lives as long as the client; each `open()`
 * makes a new WebSocket (subprotocol 'xmpp'), so requests in flight (`iq()`) and stream
 * management survive a reconnection that resumes the session.
 *
 * Every text frame is one element (§3.3.3), parsed with DOMParser. Elements go first to the
 * negotiation waiters (`next()`), then: IQ responses to their requests, stream management
 * nonzas to `sm`, other stanzas to `onStanza`. `<open/>`/`<close/>` frame the stream (§3.3.1,
 * §3.6); a `<stream:error/>` ends it (§3.6.2).
 * @module xmpp/connection
 */

import { NS, build, serialize, parse, x, is, randomId } from './xml.js';
import { XmppError, stanzaError, elementError } from './errors.js';
import { bare } from './jid.js';

const STANZAS = new Set(['message', 'presence', 'iq']);

/** Whether an element is a stanza (RFC 6120 §8). @param {Element} el */
export function isStanza(el) {
  return el.namespaceURI === NS.CLIENT && STANZAS.has(el.localName);
}

/**
 * XEP-0156 §3: the WebSocket URL from this origin's /.well-known/host-meta.json, if it says.
 * @returns {Promise<string|null>}
 */
export async function discoverWebSocket() {
  try {
    const res = await fetch('/.well-known/host-meta.json', { credentials: 'omit' });
    const links = res.ok ? (await res.json()).links || [] : [];
    const ws = links.find((l) => l.rel === 'urn:xmpp:alt-connections:websocket' && /^wss?:\/\//.test(l.href || ''));
    return ws ? ws.href : null;
  } catch {
    return null;
  }
}

export class Connection extends EventTarget {
  /**
   * @param {{url: string, domain: string, timeout?: number}} options
   *   `timeout`: milliseconds an IQ (and each negotiation step) may take
   */
  constructor({ url, domain, timeout = 20000 }) {
    super();
    this.url = url;
    this.domain = domain;
    this.timeout = timeout;
    /** @type {WebSocket|null} */
    this.ws = null;
    /** the full JID once bound, used to check where IQ responses come from */
    this.jid = null;
    /** stream management (sm.js) when enabled: {sent(el, xml), handled(), nonza(el)} */
    this.sm = null;
    /** @type {(el: Element) => void} */
    this.onStanza = () => {};
    this._pending = new Map(); // iq id -> {resolve, reject, timer, to}
    this._waiters = [];
    this._closing = false;
  }

  /** Whether a WebSocket is open. */
  get connected() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * A new WebSocket and stream; resolves with the stream features.
   * @returns {Promise<Element>}
   */
  open() {
    this.abort();
    this._closing = false;
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.url, 'xmpp');
      } catch (e) {
        reject(new XmppError('remote-connection-failed', String(e && e.message)));
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        if (ws.protocol !== 'xmpp') {
          ws.close();
          reject(new XmppError('remote-connection-failed', 'the server does not speak xmpp'));
          return;
        }
        this.restart().then(resolve, reject);
      };
      ws.onmessage = (event) => this._receive(ws, event.data);
      ws.onerror = () => {}; // onclose follows and says it
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        const error = this._streamError
          || new XmppError('disconnected', event.reason || `WebSocket closed (${event.code})`);
        this._streamError = null;
        this._rejectWaiters(error);
        if (!opened) reject(new XmppError('remote-connection-failed', 'cannot reach the server'));
        this.dispatchEvent(new CustomEvent('closed', {
          detail: { clean: this._closing, error: this._closing ? null : error },
        }));
      };
    });
  }

  /**
   * RFC 7395 §3.4: (re)open the stream on this WebSocket; resolves with its features.
   * @returns {Promise<Element>}
   */
  async restart() {
    const features = this.next((el) => is(el, 'features', NS.STREAM));
    this.sendRaw(serialize(x('open', { xmlns: NS.FRAMING, to: this.domain, version: '1.0' })));
    return features;
  }

  /**
   * The next element that satisfies `pred` (during negotiation), within the timeout.
   * @param {(el: Element) => boolean} pred
   * @param {number} [timeout]
   * @returns {Promise<Element>}
   */
  next(pred, timeout = this.timeout) {
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve, reject };
      waiter.timer = setTimeout(() => {
        this._waiters.splice(this._waiters.indexOf(waiter), 1);
        reject(new XmppError('timeout', 'the server did not answer'));
      }, timeout);
      this._waiters.push(waiter);
    });
  }

  /**
   * Send a stanza or nonza (a tree from `x()` or an element); counted by stream management.
   * Without a socket, a stanza waits in the stream management queue when there is one.
   * @param {*} node
   * @returns {Element} the element sent
   */
  send(node) {
    const el = node instanceof Element ? node : build(node);
    const xml = serialize(el);
    if (this.sm && isStanza(el)) this.sm.sent(el, xml);
    else if (!this.connected) throw new XmppError('disconnected', 'not connected');
    if (this.connected) this.ws.send(xml);
    return el;
  }

  /** Send markup as is (stream framing, resent stanzas). @param {string} xml */
  sendRaw(xml) {
    if (!this.connected) throw new XmppError('disconnected', 'not connected');
    this.ws.send(xml);
  }

  /**
   * Send an IQ and wait for its response (RFC 6120 §8.2.3).
   * @param {*} node an `iq` tree; its id is set here
   * @param {number} [timeout] milliseconds
   * @returns {Promise<Element>} the result; rejects with XmppError for errors and timeouts
   */
  iq(node, timeout = this.timeout) {
    const id = randomId(12);
    node.attrs.id = id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new XmppError('timeout', 'no answer from ' + (node.attrs.to || 'the server')));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer, to: node.attrs.to || null });
      try {
        this.send(node);
      } catch (e) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(e);
      }
    });
  }

  /** Reject every IQ in flight (their session is gone). @param {XmppError} error */
  failPending(error) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(error);
      this._pending.delete(id);
    }
  }

  /**
   * RFC 7395 §3.6: close the stream; resolves when the WebSocket is closed.
   * @param {number} [timeout] how long to wait for the server's <close/>
   */
  close(timeout = 3000) {
    const ws = this.ws;
    if (!ws) return Promise.resolve();
    this._closing = true;
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(() => { ws.close(); done(); }, timeout);
      ws.addEventListener('close', done, { once: true });
      try {
        ws.send(serialize(x('close', { xmlns: NS.FRAMING })));
      } catch {
        ws.close();
      }
    });
  }

  /** Drop the WebSocket at once, without closing the stream (the session may be resumed). */
  abort() {
    const ws = this.ws;
    if (!ws) return;
    this._closing = true;
    this.ws = null;
    ws.onclose = ws.onmessage = ws.onopen = null;
    try { ws.close(); } catch { /* already closed */ }
    this._rejectWaiters(new XmppError('disconnected', 'connection closed'));
  }

  _rejectWaiters(error) {
    const waiters = this._waiters.splice(0);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(error);
    }
  }

  _receive(ws, data) {
    if (ws !== this.ws || typeof data !== 'string') return;
    const el = parse(data);
    if (!el) {
      this._streamError = new XmppError('not-well-formed', 'the server sent bad XML', 'stream');
      ws.close();
      return;
    }
    if (el.namespaceURI === NS.FRAMING) {
      if (el.localName === 'open') this.streamId = el.getAttribute('id');
      else if (el.localName === 'close') this._serverClosed(ws);
      return;
    }
    if (is(el, 'error', NS.STREAM)) {
      this._streamError = elementError(el, NS.STREAMS_ERR, 'stream');
      return; // the server closes the stream next
    }
    const stanza = isStanza(el);
    try {
      const i = this._waiters.findIndex((w) => w.pred(el));
      if (i >= 0) {
        const [w] = this._waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(el);
      } else if (!stanza) {
        if (el.namespaceURI === NS.SM && this.sm) this.sm.nonza(el);
      } else if (!this._response(el)) {
        this.onStanza(el);
      }
    } finally {
      if (stanza && this.sm) this.sm.handled(); // XEP-0198 §4: every stanza counts
    }
  }

  _serverClosed(ws) {
    // §3.6.1: answer with our <close/> unless we sent it; the server then closes the socket.
    if (!this._closing) {
      this._closing = !this._streamError;
      try { ws.send(serialize(x('close', { xmlns: NS.FRAMING }))); } catch { /* closed */ }
    }
    setTimeout(() => ws.close(), 1000);
  }

  /** An IQ result or error for a request of ours: settle it. */
  _response(el) {
    if (el.localName !== 'iq') return false;
    const type = el.getAttribute('type');
    if (type !== 'result' && type !== 'error') return false;
    const p = this._pending.get(el.getAttribute('id'));
    if (!p || !this._fromMatches(p.to, el.getAttribute('from'))) return false;
    this._pending.delete(el.getAttribute('id'));
    clearTimeout(p.timer);
    if (type === 'result') p.resolve(el);
    else p.reject(stanzaError(el));
    return true;
  }

  /** RFC 6120 §10.3.3 / §8.1.2.1: a response comes from where the request went. */
  _fromMatches(to, from) {
    if (to === from) return true;
    const own = this.jid ? bare(this.jid) : null;
    if (!to) return !from || from === own || from === this.jid || from === this.domain;
    return !!own && to === own && !from;
  }
}
