// Browser notifications (the Notifications API) for messages that arrive while their chat is
// not open or the tab is hidden. Permission is asked for only from a click on the sidebar's
// "enable notifications" button, which shows while the browser has not been asked yet.
// Nothing is shown while the user's own status is "do not disturb".
import { byTestId } from './dom.js';
import { t } from './i18n.js';
import { preview } from './messages.js';
import { contactName } from './contacts.js';

const supported = () => typeof window.Notification === 'function';

export class Notifier {
  constructor(app) {
    this.app = app;
    this.button = byTestId('notifications-enable');
    this.button.addEventListener('click', () => this.enable());
    this.refresh();
  }

  permission() {
    return supported() ? window.Notification.permission : 'unsupported';
  }

  refresh() {
    this.button.hidden = this.permission() !== 'default';
  }

  async enable() {
    if (!supported()) return;
    this.button.disabled = true;
    try {
      await window.Notification.requestPermission();
    } catch (err) {
      console.warn('notification permission', err);
    } finally {
      this.button.disabled = false;
      this.refresh();
    }
    if (this.permission() === 'granted') this.app.toast(t('notify.enabled'));
  }

  /** A new message `m` (the UI's copy) in conversation `conv`: notify when it would go unseen. */
  message(conv, m) {
    if (m.mine || m.archived || this.permission() !== 'granted') return;
    if (this.app.presence?.show === 'dnd') return;
    if (this.app.active === conv.jid && !document.hidden) return;
    const c = this.app.client;
    let title;
    if (conv.kind === 'group') {
      const room = c.rooms?.get(conv.jid);
      title = t('notify.groupTitle', { nick: m.nick || '', room: room?.name || conv.jid });
    } else {
      title = contactName(c, conv.jid);
    }
    const body = preview({ ...m, nick: null }); // plain text; the API renders no markup
    try {
      const note = new window.Notification(title, {
        body, tag: `xmppd:${conv.jid}`, icon: '/static/icon.svg', lang: document.documentElement.lang,
      });
      note.onclick = () => {
        window.focus();
        this.app.openChat(conv.jid, conv.kind);
        note.close();
      };
    } catch (err) {
      // e.g. Chrome on Android allows notifications only from a service worker
      console.warn('notification', err);
    }
  }
}
