// The profile dialog: nickname (XEP-0172) and avatar (XEP-0084); friends see both.
import { byTestId, safeUrl } from './dom.js';
import { errorText, t } from './i18n.js';
import { colourIndex, initials } from './avatar.js';
import { local } from '../xmpp/jid.js';

const AVATAR_MAX = 256; // px: larger pictures are scaled down before publishing

/** A picture scaled down to AVATAR_MAX (square crop); small ones are kept as they are. */
async function shrink(file) {
  if (typeof createImageBitmap !== 'function') return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return file; // not an image the browser decodes: let the server judge
  }
  const side = Math.min(bitmap.width, bitmap.height);
  if (bitmap.width <= AVATAR_MAX && bitmap.height <= AVATAR_MAX) {
    bitmap.close();
    return file;
  }
  const canvas = document.createElement('canvas');
  canvas.width = AVATAR_MAX;
  canvas.height = AVATAR_MAX;
  canvas.getContext('2d').drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2,
    side, side, 0, 0, AVATAR_MAX, AVATAR_MAX);
  bitmap.close();
  const type = file.type === 'image/png' || file.type === 'image/gif' ? 'image/png' : 'image/jpeg';
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, type, 0.88));
  return blob || file;
}

export class ProfileView {
  constructor(app) {
    this.app = app;
    this.dialog = document.getElementById('dlg-profile');
    this.nick = byTestId('profile-nick');
    this.img = byTestId('profile-avatar');
    this.initials = document.getElementById('profile-initials');
    this.preview = null; // blob: URL of a picture being published
    byTestId('profile-open').addEventListener('click', () => this.open());
    byTestId('avatar-input').addEventListener('change', (e) => this.pickAvatar(e.target));
    const form = this.dialog.querySelector('form');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  get client() {
    return this.app.client;
  }

  open() {
    this.nick.value = this.client.profile?.nick || '';
    document.getElementById('profile-jid').textContent = this.client.bareJid || '';
    this.refresh();
    this.app.openDialog(this.dialog);
  }

  relabel() {
    this.refresh();
  }

  /** Show the avatar being published, else the current one, else the initials. */
  refresh() {
    const me = this.client.bareJid || '';
    const url = this.preview || safeUrl(this.client.profile?.avatarUrl);
    if (url) {
      if (this.img.getAttribute('src') !== url) this.img.setAttribute('src', url);
      this.img.hidden = false;
      this.initials.hidden = true;
    } else {
      this.img.removeAttribute('src');
      this.img.hidden = true;
      this.initials.hidden = false;
      this.initials.className = `avatar xl av-${colourIndex(me)}`;
      this.initials.textContent = initials(this.nick.value || this.client.profile?.nick || local(me) || me);
    }
  }

  async pickAvatar(input) {
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    const label = document.getElementById('avatar-label');
    label.classList.add('busy');
    this.preview = URL.createObjectURL(file);
    this.refresh();
    try {
      await this.client.setAvatar(await shrink(file));
      this.app.toast(t('profile.avatarSaved'));
    } catch (err) {
      this.app.toast(errorText(err), 'error');
    } finally {
      label.classList.remove('busy');
      // Keep showing the local copy until the client knows the published one.
      if (safeUrl(this.client.profile?.avatarUrl)) this.preview = null;
      this.refresh();
      this.app.renderMe();
    }
  }

  async save() {
    const button = byTestId('profile-save');
    const nick = this.nick.value.trim();
    this.app.dialogError(this.dialog, '');
    button.disabled = true;
    try {
      if (nick !== (this.client.profile?.nick || '')) await this.client.setNickname(nick);
      this.app.renderMe();
      this.app.toast(t('profile.saved'));
    } catch (err) {
      this.app.dialogError(this.dialog, errorText(err));
    } finally {
      button.disabled = false;
    }
  }
}
