// Own presence (RFC 6121 §4.2): the status control in the sidebar header — available, away or
// do not disturb, with an optional status message. The choice is kept per account in
// localStorage (so a reload comes back with it; forgotten on logout) and sent again whenever
// the client is online in a new (or resumed) session, since a new session starts available.
import { byTestId } from './dom.js';
import { t } from './i18n.js';

const KEY = 'xmppd.presence.';
const SHOWS = new Set(['available', 'away', 'dnd']);
const MAX_STATUS = 140;

function load(account) {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY + account) || 'null');
    if (saved && SHOWS.has(saved.show)) {
      return { show: saved.show, status: String(saved.status || '').slice(0, MAX_STATUS) };
    }
  } catch {
    // unreadable: start available
  }
  return { show: 'available', status: '' };
}

export class MyPresence {
  constructor(app) {
    this.app = app;
    this.account = null;
    this.state = { show: 'available', status: '' };
    this.form = document.getElementById('my-status');
    this.select = byTestId('status-select');
    this.input = byTestId('status-text');
    this.dot = document.getElementById('my-status-dot');
    this.select.addEventListener('change', () => this.apply());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.apply();
      this.input.blur();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        this.input.value = this.state.status;
        this.input.blur();
      }
    });
  }

  /** 'dnd' while the user asked not to be disturbed (no notifications then). */
  get show() {
    return this.state.show;
  }

  /** The client is online (new or resumed session): (re)send our presence if it is not the default. */
  online() {
    const account = this.app.client.bareJid;
    if (!account) return;
    if (account !== this.account) {
      this.account = account;
      this.state = load(account);
      this.render();
    }
    if (this.state.show !== 'available' || this.state.status) this.send();
  }

  /** Take the control's values, send them and remember them. */
  apply() {
    const show = SHOWS.has(this.select.value) ? this.select.value : 'available';
    const status = this.input.value.replace(/\s+/g, ' ').trim().slice(0, MAX_STATUS);
    this.input.value = status;
    if (show === this.state.show && status === this.state.status) return;
    this.state = { show, status };
    this.renderDot();
    if (this.account) {
      try {
        localStorage.setItem(KEY + this.account, JSON.stringify(this.state));
      } catch {
        // not remembered across a reload, but still sent
      }
    }
    this.send();
  }

  send() {
    if (this.app.client.status !== 'online') return; // sent when the session is back
    const { show, status } = this.state;
    try {
      this.app.client.setPresence(show === 'available' ? '' : show, status);
    } catch (err) {
      console.warn('presence', err);
    }
  }

  render() {
    this.select.value = this.state.show;
    this.input.value = this.state.status;
    this.renderDot();
  }

  renderDot() {
    const state = this.state.show === 'available' ? 'online' : this.state.show;
    this.dot.className = `dot inline ${state}`;
    this.dot.dataset.state = state;
    this.dot.setAttribute('title', t(`presence.${state}`));
  }

  relabel() {
    this.renderDot();
  }

  /** Logout: forget the account's status; the next login starts available. */
  forget() {
    if (this.account) {
      try {
        localStorage.removeItem(KEY + this.account);
      } catch {
        // nothing stored
      }
    }
    this.account = null;
    this.state = { show: 'available', status: '' };
    this.render();
  }
}
