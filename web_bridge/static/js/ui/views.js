// The application shell: which screen shows, the language switch, and the routing of
// XmppClient events to the views (login, contacts, groups, chat, profile); dialogs and toasts
// come from dialogs.js.
import { h, byTestId } from './dom.js';
import { DialogsMixin } from './dialogs.js';
import { icon } from './icons.js';
import { LANGS, applyStatic, lang, onLangChange, setLang, t } from './i18n.js';
import { Store, fromClient } from './store.js';
import { LoginView } from './login.js';
import { ContactsView } from './contacts.js';
import { GroupsView } from './groups.js';
import { ChatView } from './chat.js';
import { ProfileView } from './profile.js';
import { avatar } from './avatar.js';
import { MyPresence } from './presence.js';
import { Notifier } from './notify.js';
import { countUnread, forgetUnread, markRead, restoreUnread, saveUnread } from './unread.js';
import { bare, local } from '../xmpp/jid.js';

const NARROW = window.matchMedia('(max-width: 719.98px)');

export class App extends DialogsMixin(Object) {
  constructor(client) {
    super();
    this.client = client;
    this.store = new Store();
    this.screen = null;
    this.active = null; // the JID of the open conversation
    this.tab = 'contacts';
    this.loggingOut = false;
    this.main = byTestId('screen-main');
    this.loginScreen = byTestId('screen-login');
    this.splash = document.getElementById('splash');
    this.toastEl = byTestId('toast');
    this.banner = document.getElementById('conn-banner');
    for (const el of document.querySelectorAll('[data-icon]')) el.prepend(icon(el.dataset.icon));
    this.langSelect = this.buildLangSwitch();
    this.setupDialogs();
    this.login = new LoginView(this);
    this.contacts = new ContactsView(this);
    this.groups = new GroupsView(this);
    this.chat = new ChatView(this);
    this.profile = new ProfileView(this);
    this.presence = new MyPresence(this);
    this.notifier = new Notifier(this);
    this.setupTabs();
    byTestId('logout').addEventListener('click', () => this.logout());
    window.addEventListener('popstate', () => {
      this.historyPushed = false;
      if (this.active) this.closeChatNow();
    });
    onLangChange(() => this.relabel());
    this.wireClient();
  }

  async start() {
    applyStatic();
    this.updateTitle();
    this.showScreen('splash');
    let restored = false;
    try {
      restored = await this.client.restore();
    } catch (err) {
      console.warn('restore failed', err);
    }
    if (restored || this.client.status === 'online') this.enterMain();
    else this.showScreen('login');
  }

  // --- screens -------------------------------------------------------------------------

  showScreen(name) {
    this.screen = name;
    this.splash.hidden = name !== 'splash';
    this.loginScreen.hidden = name !== 'login';
    this.main.hidden = name !== 'main';
    const slot = document.getElementById(name === 'main' ? 'lang-slot-main' : 'lang-slot-login');
    slot.append(this.langSelect.parentElement);
    document.body.classList.toggle('in-main', name === 'main');
  }

  enterMain() {
    this.banner.hidden = true;
    if (this.screen === 'main') return;
    this.showScreen('main');
    if (this.client.bareJid) restoreUnread(this.client.bareJid, this.store);
    this.presence.online();
    this.notifier.refresh();
    this.renderMe();
    this.contacts.render();
    this.groups.render();
    this.updateBadges();
  }

  leaveMain() {
    if (this.historyPushed) {
      this.historyPushed = false;
      history.back();
    }
    this.chat.close();
    this.active = null;
    this.main.classList.remove('chat-open');
    this.store.clear();
    this.closeAllDialogs();
    this.showScreen('login');
    this.login.reset();
    this.updateTitle();
  }

  async logout() {
    this.loggingOut = true;
    if (this.client.bareJid) forgetUnread(this.client.bareJid);
    this.presence.forget();
    try {
      await this.client.logout();
    } catch (err) {
      console.warn('logout', err);
    } finally {
      this.loggingOut = false;
      this.leaveMain();
    }
  }

  relabel() {
    this.langSelect.value = lang();
    this.langSelect.setAttribute('aria-label', t('header.language'));
    if (this.screen === 'main') {
      this.renderMe();
      this.contacts.render();
      this.groups.render();
      this.chat.relabel();
      this.profile.relabel();
      this.presence.relabel();
    }
    this.login.relabel();
    this.updateTitle();
  }

  buildLangSwitch() {
    const select = h('select', {
      class: 'lang-select', 'data-testid': 'lang-switch', 'aria-label': t('header.language'),
      on: { change: (e) => setLang(e.target.value) },
    }, Object.entries(LANGS).map(([code, name]) => h('option', { value: code }, name)));
    select.value = lang();
    h('label', { class: 'lang-switch', title: 'Language / 语言' }, icon('globe'), select);
    return select;
  }

  setupTabs() {
    this.tabButtons = { contacts: byTestId('tab-contacts'), groups: byTestId('tab-groups') };
    for (const [name, button] of Object.entries(this.tabButtons)) {
      button.addEventListener('click', () => this.showTab(name));
    }
  }

  showTab(name) {
    this.tab = name;
    for (const [tab, button] of Object.entries(this.tabButtons)) {
      button.classList.toggle('active', tab === name);
      button.setAttribute('aria-selected', String(tab === name));
    }
    document.getElementById('pane-contacts').hidden = name !== 'contacts';
    document.getElementById('pane-groups').hidden = name !== 'groups';
  }

  renderMe() {
    const c = this.client;
    const me = c.bareJid || '';
    const nick = c.profile?.nick || '';
    byTestId('me').textContent = nick || me;
    document.getElementById('me-jid').textContent = nick ? me : '';
    document.getElementById('me-avatar').replaceChildren(
      avatar({ key: me, name: nick || local(me) || me, url: c.profile?.avatarUrl, size: 'md' }));
  }

  // --- conversations -------------------------------------------------------------------

  openChat(jid, kind) {
    const conv = this.store.get(jid, kind);
    markRead(conv);
    this.active = jid;
    this.main.classList.add('chat-open');
    // On a phone the chat covers the list: the browser's back (gesture) returns to it.
    if (!this.historyPushed && NARROW.matches) {
      history.pushState({ chat: true }, '');
      this.historyPushed = true;
    }
    this.chat.open(conv);
    this.refreshLists(kind);
  }

  closeChat() {
    if (this.historyPushed) {
      this.historyPushed = false;
      history.back(); // popstate closes the chat
      return;
    }
    this.closeChatNow();
  }

  closeChatNow() {
    this.active = null;
    this.main.classList.remove('chat-open');
    this.chat.close();
    this.contacts.render();
    this.groups.render();
    this.updateBadges();
  }

  refreshLists(kind) {
    if (kind === 'group') this.groups.render();
    else this.contacts.render();
    this.updateBadges();
  }

  updateBadges() {
    const c = this.client;
    const contacts = this.store.totalUnread('chat') + (c.requests?.size || 0);
    const groups = this.store.totalUnread('group') + (c.invitations?.size || 0);
    for (const [id, n] of [['badge-contacts', contacts], ['badge-groups', groups]]) {
      const badge = document.getElementById(id);
      badge.hidden = n === 0;
      badge.textContent = n ? (n > 99 ? '99+' : String(n)) : '';
    }
    if (this.screen === 'main' && c.bareJid && !this.loggingOut) saveUnread(c.bareJid, this.store);
    this.updateTitle();
  }

  updateTitle() {
    const n = this.screen === 'main'
      ? this.store.totalUnread('chat') + this.store.totalUnread('group') : 0;
    document.title = n ? `(${n}) ${t('app.name')}` : t('app.name');
  }

  onMessage(msg) {
    if (!msg || !msg.with) return;
    const kind = msg.type === 'groupchat' ? 'group' : 'chat';
    const conv = this.store.get(bare(msg.with), kind);
    const { message, added } = conv.add(fromClient(msg, kind));
    if (this.active === conv.jid) {
      if (added) this.chat.insert(message);
      else this.chat.update(message);
    } else if (added && !message.mine && !message.archived) {
      countUnread(conv, message.id);
    }
    if (added) this.notifier.message(conv, message);
    if (added && !message.mine) this.chat.peerActive(conv.jid, message.nick);
    if (added) this.refreshLists(kind);
  }

  onCorrection({ with: peer, id, body }) {
    const conv = this.store.peek(bare(peer));
    const m = conv && conv.find(id);
    if (!m) return;
    m.body = body;
    m.edited = true;
    if (this.active === conv.jid) this.chat.update(m);
    this.refreshLists(conv.kind);
  }

  onReceipt({ with: peer, id }) {
    const conv = this.store.peek(bare(peer));
    const m = conv && conv.find(id);
    if (!m || !m.mine) return;
    m.receipt = 'delivered';
    if (this.active === conv.jid) this.chat.update(m);
  }

  wireClient() {
    const c = this.client;
    const on = (name, fn) => c.addEventListener(name, (e) => {
      try {
        fn(e.detail || {});
      } catch (err) {
        console.warn(`handling ${name}`, err);
      }
    });
    on('status', (d) => this.onStatus(d));
    on('contacts', () => {
      this.contacts.render();
      this.chat.refreshHeader();
    });
    on('requests', () => {
      this.contacts.renderRequests();
      this.updateBadges();
    });
    on('presence', () => {
      this.contacts.render();
      this.chat.refreshHeader();
    });
    on('message', (d) => this.onMessage(d.msg));
    on('receipt', (d) => this.onReceipt(d));
    on('correction', (d) => this.onCorrection(d));
    on('chatstate', (d) => this.chat.onChatState(d));
    on('rooms', () => {
      this.groups.render();
      this.chat.refreshHeader();
    });
    on('room', (d) => this.groups.onRoom(d));
    on('invitations', () => {
      this.groups.renderInvitations();
      this.updateBadges();
    });
    on('profile', (d) => {
      if (!d.jid || bare(d.jid) === c.bareJid) {
        this.renderMe();
        this.profile.refresh();
      }
      this.contacts.render();
      this.chat.refreshHeader();
    });
    on('error', (d) => d.text && this.toast(d.text, 'error'));
  }

  onStatus({ status, reason }) {
    this.main.classList.toggle('reconnecting', status === 'connecting' && this.screen === 'main');
    if (status === 'online') {
      if (this.screen === 'main') this.presence.online(); // a new session starts available
      if (this.screen !== 'splash' && !this.login.busy) this.enterMain();
      this.banner.hidden = true;
    } else if (status === 'connecting') {
      if (this.screen === 'main') {
        this.banner.textContent = t('status.connecting');
        this.banner.hidden = false;
      }
    } else if (status === 'offline' && this.screen === 'main' && !this.loggingOut) {
      this.leaveMain();
      this.toast(reason ? `${t('status.offline')}: ${reason}` : t('status.offline'), 'error');
    }
  }
}
