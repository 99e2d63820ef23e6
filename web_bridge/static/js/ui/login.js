// The login and registration forms (XmppClient.login / register).
import { byTestId } from './dom.js';
import { errorText, t } from './i18n.js';

/** The local part the user meant: "alice" or "alice@<our domain>" both give "alice". */
function username(value, domain) {
  const v = value.trim();
  const at = v.lastIndexOf('@');
  if (at > 0 && (!domain || v.slice(at + 1).toLowerCase() === domain)) return v.slice(0, at);
  return v;
}

export class LoginView {
  constructor(app) {
    this.app = app;
    this.busy = false;
    this.loginForm = document.getElementById('login-form');
    this.registerForm = document.getElementById('register-form');
    this.error = byTestId('login-error');
    this.result = byTestId('register-result');
    this.loginForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitLogin();
    });
    this.registerForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitRegister();
    });
    byTestId('show-register').addEventListener('click', () => this.showForm('register'));
    byTestId('show-login').addEventListener('click', () => this.showForm('login'));
  }

  domain() {
    const c = this.app.client;
    return (c.domain || location.hostname || '').toLowerCase();
  }

  showForm(which) {
    this.loginForm.hidden = which !== 'login';
    this.registerForm.hidden = which !== 'register';
    this.setError('');
    if (which === 'register') this.setResult('');
    const form = which === 'login' ? this.loginForm : this.registerForm;
    const first = [...form.querySelectorAll('input')].find((i) => !i.value) || form.querySelector('input');
    if (first) first.focus();
  }

  setError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  setResult(text, ok = true) {
    this.result.textContent = text;
    this.result.hidden = !text;
    this.result.classList.toggle('error', !ok);
  }

  setBusy(button, busy, labelKey) {
    this.busy = busy;
    button.disabled = busy;
    button.classList.toggle('busy', busy);
    button.textContent = t(busy ? labelKey : button.dataset.i18n);
  }

  async submitLogin() {
    if (this.busy) return;
    const user = username(byTestId('login-username').value, this.domain());
    const password = byTestId('login-password').value;
    if (!user || !password) {
      this.setError(t('login.missing'));
      return;
    }
    const remember = byTestId('login-remember').checked;
    const button = byTestId('login-submit');
    this.setError('');
    this.setBusy(button, true, 'login.busy');
    try {
      await this.app.client.login(user, password, { remember });
      byTestId('login-password').value = '';
      this.setResult('');
      this.setBusy(button, false);
      this.app.enterMain();
    } catch (err) {
      this.setBusy(button, false);
      this.setError(errorText(err, { 'not-authorized': 'login.wrong' }));
    }
  }

  async submitRegister() {
    if (this.busy) return;
    const user = username(byTestId('register-username').value, this.domain());
    const password = byTestId('register-password').value;
    if (!user || !password) {
      this.setResult(t('login.missing'), false);
      return;
    }
    const button = byTestId('register-submit');
    this.setResult('');
    this.setBusy(button, true, 'register.busy');
    try {
      await this.app.client.register(user, password);
      this.setBusy(button, false);
      byTestId('login-username').value = user;
      byTestId('login-password').value = password;
      byTestId('register-password').value = '';
      this.showForm('login');
      this.setResult(t('register.done', { user }));
      byTestId('login-submit').focus();
    } catch (err) {
      this.setBusy(button, false);
      this.setResult(errorText(err, {
        conflict: 'register.taken', 'not-acceptable': 'register.rejected',
      }), false);
    }
  }

  /** Back to a clean login form (after logging out). */
  reset() {
    this.setError('');
    this.setResult('');
    this.loginForm.hidden = false;
    this.registerForm.hidden = true;
    byTestId('login-password').value = '';
  }

  relabel() {
    // Texts of the buttons come from data-i18n (applyStatic); nothing dynamic to redo.
  }
}
