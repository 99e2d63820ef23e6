// The contact list (roster, RFC 6121) with presence and unread counts, incoming friend
// requests with their note, and the "add friend" dialog.
import { h, byTestId, replace } from './dom.js';
import { errorText, formatShort, t } from './i18n.js';
import { avatar } from './avatar.js';
import { complete, local, valid } from '../xmpp/jid.js';
import { preview } from './messages.js';

/** online | away | dnd | offline, as the contract's data-state (RFC 6121 §4.7.2.1 <show/>). */
export function presenceState(presence) {
  if (!presence || !presence.online) return 'offline';
  if (presence.show === 'dnd') return 'dnd';
  return ['away', 'xa'].includes(presence.show) ? 'away' : 'online';
}

/** The contact's status message (<status/>), white space folded; '' when none. */
export function statusText(presence) {
  if (!presence || !presence.online) return '';
  return String(presence.status || '').replace(/\s+/g, ' ').trim();
}

/** How a contact is called: their nickname, else the roster name, else the local part. */
export function contactName(client, jid) {
  const c = client.contacts?.get(jid);
  return (c && (c.nick || c.name)) || local(jid) || jid;
}

export class ContactsView {
  constructor(app) {
    this.app = app;
    this.list = byTestId('contacts');
    this.empty = document.getElementById('contacts-empty');
    this.requests = document.getElementById('requests');
    this.requestsBlock = document.getElementById('requests-block');
    this.dialog = document.getElementById('dlg-add-contact');
    byTestId('add-contact-open').addEventListener('click', () => this.openAdd());
    app.bindDialog(this.dialog, (form) => this.add(form));
  }

  openAdd(jid = '') {
    const jidInput = byTestId('add-contact-jid');
    const domain = this.app.client.bareJid?.split('@')[1] || location.hostname;
    jidInput.setAttribute('placeholder', t('addContact.jidHint', { domain }));
    jidInput.value = jid;
    byTestId('add-contact-note').value = '';
    this.app.openDialog(this.dialog);
  }

  async add(form) {
    const c = this.app.client;
    const domain = c.bareJid?.split('@')[1] || location.hostname;
    const jid = complete(form.elements.jid.value, domain);
    if (!jid || !valid(jid)) throw new Error(t('err.address'));
    if (jid === c.bareJid) throw new Error(t('addContact.self'));
    await c.addContact(jid, form.elements.note.value.trim());
    this.app.toast(t('addContact.sent', { jid }));
    this.render();
  }

  sorted() {
    const { client, store } = this.app;
    const rows = [...(client.contacts?.values() || [])].map((contact) => {
      const conv = store.peek(contact.jid);
      return { contact, conv, last: conv?.last || null, name: contactName(client, contact.jid) };
    });
    // People who wrote without being in the roster: their conversation is listed too.
    for (const conv of store.conversations.values()) {
      if (conv.kind !== 'chat' || !conv.messages.length || client.contacts?.has(conv.jid)) continue;
      const contact = { jid: conv.jid, presence: null, stranger: true };
      rows.push({ contact, conv, last: conv.last, name: contactName(client, conv.jid) });
    }
    const rank = { online: 0, away: 1, dnd: 1, offline: 2 };
    rows.sort((a, b) => (b.last?.stamp || 0) - (a.last?.stamp || 0)
      || rank[presenceState(a.contact.presence)] - rank[presenceState(b.contact.presence)]
      || a.name.localeCompare(b.name));
    return rows;
  }

  render() {
    const rows = this.sorted();
    replace(this.list, rows.map((row) => this.item(row)));
    this.empty.hidden = rows.length > 0 || (this.app.client.requests?.size || 0) > 0;
    this.renderRequests();
  }

  subtitle(contact, last) {
    if (last) return preview(last);
    if (contact.stranger) return t('contact.stranger');
    if (contact.ask === 'subscribe' && !['both', 'to'].includes(contact.subscription)) {
      return t('contact.pending');
    }
    return t(`presence.${presenceState(contact.presence)}`); // the status message has its own line
  }

  item({ contact, conv, last, name }) {
    const { jid } = contact;
    const state = presenceState(contact.presence);
    const unread = conv?.unread || 0;
    const status = statusText(contact.presence);
    return h('li', {
      class: ['item', this.app.active === jid && 'active'], 'data-testid': 'contact', 'data-jid': jid,
      role: 'button', tabindex: '0', title: jid,
      on: {
        click: () => this.app.openChat(jid, 'chat'),
        keydown: (e) => { if (e.key === 'Enter') this.app.openChat(jid, 'chat'); },
      },
    },
    h('span', { class: 'avatar-wrap' },
      avatar({ key: jid, name, url: contact.avatarUrl, testid: 'contact-avatar' }),
      h('span', {
        class: ['dot', state], 'data-testid': 'contact-presence', 'data-state': state,
        title: t(`presence.${state}`),
      })),
    h('span', { class: 'item-main' },
      h('span', { class: 'item-top' },
        h('span', { class: 'item-name', 'data-testid': 'contact-name' }, name),
        last ? h('time', { class: 'item-time' }, formatShort(last.stamp)) : null),
      status ? h('span', { class: 'item-status', 'data-testid': 'contact-status', title: status }, status) : null,
      h('span', { class: 'item-bottom' },
        h('span', { class: 'item-sub' }, this.subtitle(contact, last)),
        unread > 0 ? h('span', { class: 'badge', 'data-testid': 'unread' }, String(unread)) : null)));
  }

  renderRequests() {
    const requests = [...(this.app.client.requests?.values() || [])];
    this.requestsBlock.hidden = requests.length === 0;
    replace(this.requests, requests.map((r) => this.requestItem(r)));
    this.empty.hidden = (this.app.client.contacts?.size || 0) > 0 || requests.length > 0;
  }

  requestItem({ jid, note }) {
    const act = (button, fn) => async () => {
      button.disabled = true;
      try {
        await fn(jid);
      } catch (err) {
        button.disabled = false;
        this.app.toast(errorText(err), 'error');
      }
    };
    const accept = h('button', { type: 'button', class: 'btn primary small', 'data-testid': 'request-accept' },
      t('common.accept'));
    const decline = h('button', { type: 'button', class: 'btn ghost small', 'data-testid': 'request-decline' },
      t('common.decline'));
    accept.addEventListener('click', act(accept, (j) => this.app.client.acceptRequest(j)));
    decline.addEventListener('click', act(decline, (j) => this.app.client.declineRequest(j)));
    return h('li', { class: 'card', 'data-testid': 'request', 'data-jid': jid },
      h('div', { class: 'card-head' },
        avatar({ key: jid, name: local(jid) || jid, size: 'md' }),
        h('div', { class: 'card-text' },
          h('strong', { class: 'card-title' }, jid),
          h('span', { class: 'card-sub' }, t('requests.wants')))),
      h('p', { class: 'card-note', 'data-testid': 'request-note', hidden: !note }, note || ''),
      h('div', { class: 'card-actions' }, decline, accept));
  }
}
