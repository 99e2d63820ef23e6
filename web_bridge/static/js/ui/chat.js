// The conversation pane shared by 1:1 chats and groups: header, timeline with history from
// the archive (XEP-0313, "load more"), typing notifications (XEP-0085) and the composer.
import { h, byTestId, replace } from './dom.js';
import { icon } from './icons.js';
import { errorText, formatDay, t } from './i18n.js';
import { avatar } from './avatar.js';
import { fromClient } from './store.js';
import { renderDay, renderMessage } from './messages.js';
import { contactName, presenceState } from './contacts.js';
import { Composer } from './composer.js';
import { membersText } from './groups.js';
import { local } from '../xmpp/jid.js';

const PAGE = 30;
const RUN_MS = 5 * 60 * 1000;
const TYPING_MS = 30 * 1000; // XEP-0085 §5.2: composing without news for a while = paused

function sameDay(a, b) {
  return a.toDateString() === b.toDateString();
}

function senderOf(m) {
  return m.mine ? '\u0000me' : (m.nick || m.from);
}

function startsRun(prev, m) {
  return !prev || senderOf(prev) !== senderOf(m) || m.stamp - prev.stamp > RUN_MS
    || !sameDay(prev.stamp, m.stamp);
}

/**
 * Receipts are not archived: an own archived message that the peer answered later was
 * evidently delivered, so it shows as such.
 */
function markAnswered(conv) {
  if (conv.kind !== 'chat') return;
  let answered = false;
  for (let i = conv.messages.length - 1; i >= 0; i -= 1) {
    const m = conv.messages[i];
    if (!m.mine) answered = true;
    else if (answered && m.archived && m.receipt === 'sent') m.receipt = 'delivered';
  }
}

export class ChatView {
  constructor(app) {
    this.app = app;
    this.conv = null;
    this.el = byTestId('chat');
    this.emptyEl = document.getElementById('chat-empty');
    this.title = byTestId('chat-title');
    this.status = document.getElementById('chat-status');
    this.desc = byTestId('group-description-label');
    this.avatarSlot = document.getElementById('chat-avatar');
    this.actions = document.getElementById('chat-actions');
    this.timeline = document.getElementById('timeline');
    this.list = byTestId('messages');
    this.timelineEmpty = document.getElementById('timeline-empty');
    this.loadMoreButton = byTestId('load-more');
    this.typingEl = byTestId('typing');
    this.typingText = document.getElementById('typing-text');
    this.typers = new Map(); // conversation -> Map(who -> timer)
    this.composer = new Composer(app, this);
    byTestId('back').addEventListener('click', () => app.closeChat());
    this.loadMoreButton.addEventListener('click', () => this.loadMore());
  }

  // --- open / close --------------------------------------------------------------------

  open(conv) {
    const switching = this.conv !== conv;
    this.conv = conv;
    this.el.setAttribute('data-jid', conv.jid);
    this.el.classList.toggle('is-group', conv.kind === 'group');
    this.el.hidden = false;
    this.emptyEl.hidden = true;
    if (switching) {
      this.composer.switchTo(conv);
      this.app.groups.closeMembers();
    }
    this.refreshHeader();
    this.renderAll();
    this.renderTyping();
    this.scrollToBottom();
    if (!conv.loaded) this.loadHistory(conv);
    this.composer.focus();
  }

  close() {
    if (this.conv) this.composer.leave();
    this.conv = null;
    this.el.hidden = true;
    this.el.removeAttribute('data-jid');
    this.emptyEl.hidden = false;
    this.app.groups.closeMembers();
  }

  relabel() {
    if (!this.conv) return;
    this.refreshHeader();
    this.renderAll();
    this.renderTyping();
    this.composer.relabel();
  }

  // --- header --------------------------------------------------------------------------

  refreshHeader() {
    const conv = this.conv;
    if (!conv) return;
    const c = this.app.client;
    if (conv.kind === 'group') {
      const room = c.rooms?.get(conv.jid);
      const name = room?.name || local(conv.jid) || conv.jid;
      this.title.textContent = name;
      const count = room?.occupants?.size || 0;
      const out = !room || !room.joined;
      this.status.textContent = out ? t('group.notJoined') : count ? membersText(count) : '';
      if (out && this.typers.delete(conv.jid)) this.renderTyping();
      this.composer.setEnabled(!out);
      this.status.className = '';
      this.desc.textContent = room?.description || '';
      this.desc.hidden = !room?.description;
      this.avatarSlot.replaceChildren(avatar({ key: conv.jid, name, size: 'md' }));
    } else {
      const contact = c.contacts?.get(conv.jid);
      const name = contactName(c, conv.jid);
      this.title.textContent = name;
      const state = presenceState(contact?.presence);
      const statusText = contact?.presence?.status;
      this.status.textContent = statusText ? `${t(`presence.${state}`)} · ${statusText}` : t(`presence.${state}`);
      this.status.className = `presence-text ${state}`;
      this.desc.textContent = '';
      this.desc.hidden = true;
      this.composer.setEnabled(true);
      this.avatarSlot.replaceChildren(h('span', { class: 'avatar-wrap' },
        avatar({ key: conv.jid, name, url: contact?.avatarUrl, size: 'md' }),
        h('span', { class: ['dot', state] })));
    }
    this.renderActions();
  }

  renderActions() {
    const conv = this.conv;
    const button = (testid, iconName, label, handler, danger = false) => h('button', {
      type: 'button', class: ['icon-btn', danger && 'danger'], 'data-testid': testid, title: label,
      'aria-label': label, on: { click: handler },
    }, icon(iconName));
    const groups = this.app.groups;
    let buttons;
    if (conv.kind === 'group') {
      const room = this.app.client.rooms?.get(conv.jid);
      buttons = [
        button('group-members-open', 'users', t('group.members'), () => groups.toggleMembers(conv.jid)),
        room?.joined !== false
          ? button('group-invite-open', 'userPlus', t('group.invite'), () => groups.openInvite(conv.jid))
          : null,
        room?.affiliation === 'owner'
          ? button('group-rename-open', 'edit', t('group.rename'), () => groups.openRename(conv.jid))
          : null,
        button('group-leave', 'leave', t('group.leave'), () => groups.leave(conv.jid), true),
      ];
    } else if (this.app.client.contacts?.has(conv.jid)) {
      buttons = [button('contact-remove', 'userMinus', t('chat.remove'), () => this.removeContact(conv.jid), true)];
    } else {
      // Not a friend (yet): offer to ask them.
      buttons = [h('button', {
        type: 'button', class: 'btn soft small', on: { click: () => this.app.contacts.openAdd(conv.jid) },
      }, icon('userPlus'), t('contacts.add'))];
    }
    replace(this.actions, buttons);
    this.app.groups.markMembersButton();
  }

  async removeContact(jid) {
    const name = contactName(this.app.client, jid);
    try {
      await this.app.client.removeContact(jid);
      this.app.store.conversations.delete(jid);
      if (this.app.active === jid) this.app.closeChat();
      this.app.toast(t('chat.removed', { name }));
    } catch (err) {
      this.app.toast(errorText(err), 'error');
    }
  }

  // --- timeline ------------------------------------------------------------------------

  renderAll() {
    const conv = this.conv;
    const items = [];
    let prev = null;
    const group = conv.kind === 'group';
    const rows = [];
    for (const m of conv.messages) {
      if (!prev || !sameDay(prev.stamp, m.stamp)) items.push(renderDay(formatDay(m.stamp)));
      const li = renderMessage(m, { group, first: startsRun(prev, m), app: this.app });
      if (rows.length && startsRun(prev, m)) rows[rows.length - 1].classList.add('last');
      rows.push(li);
      items.push(li);
      prev = m;
    }
    if (rows.length) rows[rows.length - 1].classList.add('last');
    replace(this.list, items, this.composer.pendingItems());
    this.updateChrome();
  }

  updateChrome() {
    const conv = this.conv;
    this.loadMoreButton.hidden = !(conv.loaded && !conv.complete);
    this.timelineEmpty.hidden = !(conv.loaded && conv.messages.length === 0);
  }

  /** A new message of the open conversation. */
  insert(m) {
    const conv = this.conv;
    const index = conv.messages.indexOf(m);
    const prev = conv.messages[index - 1] || null;
    const lastLi = [...this.list.querySelectorAll('li.message:not(.pending)')].pop();
    const nearBottom = this.nearBottom();
    if (index === conv.messages.length - 1 && (!prev || lastLi?.dataset.id === prev.id)) {
      const first = startsRun(prev, m);
      const li = renderMessage(m, { group: conv.kind === 'group', first, app: this.app });
      li.classList.add('last');
      if (lastLi && !first) lastLi.classList.remove('last');
      const before = this.list.querySelector('li.pending');
      if (!prev || !sameDay(prev.stamp, m.stamp)) {
        this.list.insertBefore(renderDay(formatDay(m.stamp)), before);
      }
      this.list.insertBefore(li, before);
      this.updateChrome();
    } else {
      this.renderAll();
    }
    if (m.mine || nearBottom) this.scrollToBottom();
    this.composer.refreshEditLast();
  }

  /** A message changed (correction, receipt): redraw its bubble in place. */
  update(m) {
    const old = this.list.querySelector(`li.message[data-id="${CSS.escape(m.id)}"]`);
    if (!old) return;
    const li = renderMessage(m, {
      group: this.conv.kind === 'group', first: old.classList.contains('first'), app: this.app,
    });
    if (old.classList.contains('last')) li.classList.add('last');
    old.replaceWith(li);
    this.composer.refreshEditLast();
  }

  nearBottom() {
    const tl = this.timeline;
    return tl.scrollHeight - tl.scrollTop - tl.clientHeight < 120;
  }

  scrollToBottom() {
    this.timeline.scrollTop = this.timeline.scrollHeight;
    this.stickToBottom = true;
  }

  imageLoaded() {
    if (this.stickToBottom || this.nearBottom()) this.scrollToBottom();
  }

  // --- history -------------------------------------------------------------------------

  async loadHistory(conv) {
    if (conv.loading) return conv.loading;
    const c = this.app.client;
    const opts = { max: PAGE };
    if (conv.loaded && conv.cursor) opts.before = conv.cursor;
    conv.loading = (async () => {
      const res = conv.kind === 'group'
        ? await c.roomHistory(conv.jid, opts) : await c.history(conv.jid, opts);
      const messages = res?.messages || [];
      conv.addPage(messages.map((msg) => fromClient({ ...msg, archived: true }, conv.kind)));
      markAnswered(conv);
      conv.cursor = res?.first || messages[0]?.archiveId || messages[0]?.id || conv.cursor;
      conv.complete = Boolean(res?.complete) || messages.length === 0;
      conv.loaded = true;
    })();
    try {
      await conv.loading;
    } catch (err) {
      conv.loaded = true;
      conv.complete = true;
      console.warn('history', err);
    } finally {
      conv.loading = null;
    }
    if (this.conv === conv) {
      const tl = this.timeline;
      const fromBottom = tl.scrollHeight - tl.scrollTop;
      const wasFirst = opts.before === undefined;
      this.renderAll();
      if (wasFirst) this.scrollToBottom();
      else tl.scrollTop = tl.scrollHeight - fromBottom;
      this.composer.refreshEditLast();
    }
    this.app.refreshLists(conv.kind);
    return undefined;
  }

  async loadMore() {
    const conv = this.conv;
    if (!conv || conv.complete || conv.loading) return;
    this.loadMoreButton.disabled = true;
    this.stickToBottom = false;
    try {
      await this.loadHistory(conv);
    } finally {
      this.loadMoreButton.disabled = false;
    }
  }

  // --- typing --------------------------------------------------------------------------

  onChatState({ with: jid, state, nick }) {
    const room = this.app.client.rooms?.get(jid);
    if (room && nick && nick === room.nick) return;
    const who = nick || jid;
    let typers = this.typers.get(jid);
    if (!typers) this.typers.set(jid, typers = new Map());
    clearTimeout(typers.get(who));
    if (state === 'composing') {
      typers.set(who, setTimeout(() => {
        typers.delete(who);
        if (this.conv?.jid === jid) this.renderTyping();
      }, TYPING_MS));
    } else {
      typers.delete(who);
    }
    if (this.conv?.jid === jid) this.renderTyping();
  }

  /** A message from `nick` (or the peer) arrived: they are not typing any more. */
  peerActive(jid, nick) {
    this.onChatState({ with: jid, state: 'active', nick });
  }

  renderTyping() {
    const conv = this.conv;
    const typers = conv && this.typers.get(conv.jid);
    if (!typers || typers.size === 0) {
      this.typingEl.hidden = true;
      return;
    }
    const names = conv.kind === 'group' ? [...typers.keys()].join(', ')
      : contactName(this.app.client, conv.jid);
    this.typingText.textContent = t('chat.typing', { name: names });
    this.typingEl.hidden = false;
    if (this.nearBottom()) this.scrollToBottom();
  }
}
