// Unread counts that survive a reload: per account in localStorage (key xmppd.unread.<jid>),
// as {conversation jid: {kind, ids}} with the ids of the unread messages, so that a message
// the server hands over again after the reload (a resumed stream, XEP-0198 §5) is not counted
// twice. Forgotten on logout.

const KEY = 'xmppd.unread.';
const MAX_IDS = 200;

/** Restore the saved counts of `account` into `store` (conversations get `unreadIds`). */
export function restoreUnread(account, store) {
  let saved;
  try {
    saved = JSON.parse(localStorage.getItem(KEY + account) || '{}');
  } catch {
    return;
  }
  if (!saved || typeof saved !== 'object') return;
  for (const [jid, entry] of Object.entries(saved)) {
    const ids = Array.isArray(entry?.ids) ? entry.ids.map(String).slice(-MAX_IDS) : [];
    if (!ids.length || !['chat', 'group'].includes(entry.kind)) continue;
    const conv = store.get(jid, entry.kind);
    const seen = conv.unreadIds || []; // counted in this page already (before the restore)
    conv.unreadIds = [...ids.filter((id) => !seen.includes(id)), ...seen].slice(-MAX_IDS);
    conv.unread = conv.unreadIds.length;
  }
}

/** Count message `id` as unread in `conv`; false when it was counted already. */
export function countUnread(conv, id) {
  conv.unreadIds ||= [];
  if (conv.unreadIds.includes(id)) return false;
  conv.unreadIds.push(id);
  if (conv.unreadIds.length > MAX_IDS) conv.unreadIds.shift();
  conv.unread += 1;
  return true;
}

export function markRead(conv) {
  conv.unread = 0;
  conv.unreadIds = [];
}

export function saveUnread(account, store) {
  const out = {};
  for (const conv of store.conversations.values()) {
    if (conv.unread > 0 && conv.unreadIds?.length) out[conv.jid] = { kind: conv.kind, ids: conv.unreadIds };
  }
  try {
    if (Object.keys(out).length) localStorage.setItem(KEY + account, JSON.stringify(out));
    else localStorage.removeItem(KEY + account);
  } catch {
    // storage full or unavailable: the counts live on in this page only
  }
}

export function forgetUnread(account) {
  try {
    localStorage.removeItem(KEY + account);
  } catch {
    // nothing stored
  }
}
