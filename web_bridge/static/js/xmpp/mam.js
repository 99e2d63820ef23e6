/**
 * XEP-0313 Message Archive Management (urn:xmpp:mam:2) with XEP-0059 paging, for the user's
 * own archive (1:1 history, filtered by `with`) and for rooms (query sent to the room JID).
 *
 * Pages go backwards from the newest (`<before/>`); each page is returned oldest first. The
 * page's XEP-0308 corrections are applied to the messages they correct (also to messages of
 * older pages loaded later); a message's `id` is the one it had live (its id attribute or
 * origin-id), so live and archived copies are recognisable as the same message.
 * @module xmpp/mam
 */

import { NS, x, child, text, submitForm, randomId } from './xml.js';
import { bare, resource, sameBare } from './jid.js';
import { delayOf, parseMessage } from './chat.js';

const QUERY_TIMEOUT = 30000;

export class Mam {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    this.queries = new Map(); // queryid -> {archive, items}
    this.pending = new Map(); // conversation -> Map(original id -> correction) not applied yet
    this.archiveIds = new Map(); // message id -> archive id, for 'before' given as a message id
  }

  /**
   * A result message of one of our queries: collected, not shown live.
   * @param {Element} el
   * @returns {boolean} handled
   */
  onMessage(el) {
    const result = child(el, 'result', NS.MAM);
    if (!result) return false;
    const q = this.queries.get(result.getAttribute('queryid'));
    const from = el.getAttribute('from');
    // §4.2: results come from the archive (no 'from' or the bare JID for one's own).
    if (q && (q.archive ? from === q.archive : !from || from === this.client.bareJid)) {
      const forwarded = child(result, 'forwarded', NS.FORWARD);
      const message = child(forwarded, 'message');
      if (message) q.items.push({ archiveId: result.getAttribute('id'), stamp: delayOf(forwarded), message });
    }
    return true;
  }

  /**
   * One page of an archive.
   * @param {{archive?: string|null, with?: string, before?: string|null, max?: number}} o
   * @returns {Promise<{items: Array, complete: boolean, first: string|null, last: string|null}>}
   */
  async query({ archive = null, with: peer, before = null, max = 30 }) {
    const queryid = randomId(10);
    const q = { archive, items: [] };
    this.queries.set(queryid, q);
    const fields = peer ? { with: peer } : {};
    try {
      const res = await this.client.iq(x('iq', { type: 'set', to: archive || undefined },
        x('query', { xmlns: NS.MAM, queryid },
          submitForm(NS.MAM, fields),
          x('set', { xmlns: NS.RSM }, x('max', {}, String(max)), x('before', {}, before || '')))),
      QUERY_TIMEOUT);
      const fin = child(res, 'fin', NS.MAM);
      const set = child(fin, 'set', NS.RSM);
      return {
        items: q.items,
        complete: fin?.getAttribute('complete') === 'true' || fin?.getAttribute('complete') === '1',
        first: text(set, 'first', NS.RSM),
        last: text(set, 'last', NS.RSM),
      };
    } finally {
      this.queries.delete(queryid);
    }
  }

  /** See XmppClient.history. */
  async history(jid, { before, max = 30 } = {}) {
    const c = this.client;
    const peer = bare(jid);
    const page = await this.query({ with: peer, before: this._cursor(before), max });
    const oneToOne = ({ message }) => !['groupchat', 'error', 'headline'].includes(message.getAttribute('type'));
    const messages = page.items.filter(oneToOne).map(({ archiveId, stamp, message }) => {
      const mine = sameBare(message.getAttribute('from') || c.bareJid, c.bareJid);
      const msg = parseMessage(message, { mine, with: peer, archiveId, stamp, archived: true });
      msg.sender = mine ? c.bareJid : peer;
      return msg;
    });
    return this._page(peer, messages, page);
  }

  /** See XmppClient.roomHistory. */
  async roomHistory(roomJid, { before, max = 30 } = {}) {
    const c = this.client;
    const room = bare(roomJid);
    const page = await this.query({ archive: room, before: this._cursor(before), max });
    const state = c.rooms.get(room);
    const messages = page.items.filter(({ message }) => message.getAttribute('type') === 'groupchat')
      .map(({ archiveId, stamp, message }) => {
        const nick = resource(message.getAttribute('from') || '') || '';
        const item = child(child(message, 'x', NS.MUC_USER), 'item', NS.MUC_USER);
        const real = item && item.getAttribute('jid');
        const mine = real ? sameBare(real, c.bareJid) : !!state && nick === state.nick;
        const msg = parseMessage(message, { mine, with: room, archiveId, stamp, nick, archived: true });
        msg.sender = real ? bare(real) : nick;
        return msg;
      });
    return this._page(room, messages, page);
  }

  /** Corrections applied, bodiless messages dropped: the API's {messages, complete, first}. */
  _page(conversation, messages, page) {
    let pending = this.pending.get(conversation);
    if (!pending) this.pending.set(conversation, pending = new Map());
    // Newest first, so that a correction is seen before the message it corrects.
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i];
      if (m.archiveId) this.archiveIds.set(m.id, m.archiveId);
      if (m.replaces) {
        if (!pending.has(m.replaces)) pending.set(m.replaces, m); // the newest correction wins
        continue;
      }
      const fix = pending.get(m.id);
      // XEP-0308 §6: only the sender may correct a message.
      if (fix && fix.sender === m.sender) {
        pending.delete(m.id);
        Object.assign(m, { body: fix.body, oob: fix.oob, edited: true, correctedFrom: fix.id });
        if (!m.oob) delete m.oob;
      }
    }
    const out = messages.filter((m) => !m.replaces && (m.body || m.oob));
    for (const m of out) delete m.sender;
    if (this.archiveIds.size > 5000) this.archiveIds.clear();
    return { messages: out, complete: page.complete, first: page.first, last: page.last };
  }

  /** 'before' as an archive id: a message id (as the UI knows it) is translated. */
  _cursor(before) {
    if (!before) return null;
    return this.archiveIds.get(before) || before;
  }

  /** Remember the archive id of a live message (so it can be a 'before' by its id). */
  remember(msg) {
    if (msg.archiveId && msg.id !== msg.archiveId) this.archiveIds.set(msg.id, msg.archiveId);
  }
}
