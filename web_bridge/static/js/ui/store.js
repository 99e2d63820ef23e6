// What the interface remembers per conversation: the messages shown (sorted by time, one per
// id), whether older history remains, the archive cursor and the unread count.

/** The UI's copy of a client message (see XmppClient 'message' in webapp.md). */
export function fromClient(msg, kind) {
  const stamp = msg.stamp instanceof Date ? msg.stamp : new Date(msg.stamp || Date.now());
  return {
    id: String(msg.id || `local-${Math.random().toString(36).slice(2)}`),
    archiveId: msg.archiveId || msg.stanzaId || null,
    with: msg.with,
    from: msg.from || '',
    nick: msg.nick || null,
    body: msg.body ?? '',
    oob: msg.oob || null,
    stamp: Number.isNaN(stamp.getTime()) ? new Date() : stamp,
    mine: Boolean(msg.mine),
    kind,
    edited: Boolean(msg.edited || msg.corrected),
    receipt: msg.mine && kind === 'chat' ? (msg.receipt === 'delivered' ? 'delivered' : 'sent') : null,
    archived: Boolean(msg.archived || msg.delayed),
  };
}

export class Conversation {
  constructor(jid, kind) {
    this.jid = jid;
    this.kind = kind; // 'chat' | 'group'
    this.messages = [];
    this.byId = new Map();
    this.loaded = false; // first history page fetched
    this.complete = false; // no older history
    this.cursor = null; // RSM 'before' for the next older page
    this.loading = null;
    this.unread = 0;
  }

  get last() {
    return this.messages[this.messages.length - 1] || null;
  }

  lastMine() {
    for (let i = this.messages.length - 1; i >= 0; i -= 1) {
      if (this.messages[i].mine && !this.messages[i].pending) return this.messages[i];
    }
    return null;
  }

  find(id) {
    return this.byId.get(String(id)) || null;
  }

  /** The stored message that `m` duplicates (same id, or same archive id), if any. */
  duplicate(m) {
    const same = this.byId.get(m.id);
    if (same) return same;
    if (m.archiveId) {
      return this.messages.find((x) => x.archiveId === m.archiveId || x.id === m.archiveId) || null;
    }
    return null;
  }

  /** Insert in time order; returns the stored message and whether it is new. */
  add(m) {
    const existing = this.duplicate(m);
    if (existing) {
      if (m.receipt === 'delivered') existing.receipt = 'delivered';
      if (m.archiveId && !existing.archiveId) existing.archiveId = m.archiveId;
      return { message: existing, added: false };
    }
    let i = this.messages.length;
    while (i > 0 && this.messages[i - 1].stamp > m.stamp) i -= 1;
    this.messages.splice(i, 0, m);
    this.byId.set(m.id, m);
    return { message: m, added: true, index: i };
  }

  /**
   * A page of history (oldest first). Archived copies of shown messages are skipped; the rest
   * goes in front as a block when it is older, so that messages of the same second keep the
   * archive's order.
   */
  addPage(page) {
    const fresh = [];
    for (const m of page) {
      if (this.duplicate(m) || fresh.some((x) => x.id === m.id)) {
        this.add(m); // merges receipt / archive id into the shown copy
        continue;
      }
      fresh.push(m);
    }
    const first = this.messages[0];
    if (!fresh.length) return 0;
    if (!first || fresh[fresh.length - 1].stamp <= first.stamp) {
      this.messages.unshift(...fresh);
      for (const m of fresh) this.byId.set(m.id, m);
    } else {
      for (const m of fresh) this.add(m);
    }
    return fresh.length;
  }

  remove(id) {
    const m = this.byId.get(id);
    if (!m) return;
    this.byId.delete(id);
    this.messages.splice(this.messages.indexOf(m), 1);
  }
}

export class Store {
  constructor() {
    this.conversations = new Map();
  }

  get(jid, kind = 'chat') {
    let conv = this.conversations.get(jid);
    if (!conv) {
      conv = new Conversation(jid, kind);
      this.conversations.set(jid, conv);
    }
    return conv;
  }

  peek(jid) {
    return this.conversations.get(jid) || null;
  }

  totalUnread(kind) {
    let n = 0;
    for (const conv of this.conversations.values()) if (conv.kind === kind) n += conv.unread;
    return n;
  }

  clear() {
    this.conversations.clear();
  }
}
