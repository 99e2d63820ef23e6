// The message composer: Enter sends (Shift+Enter: new line), chat states as the user types
// (XEP-0085), correcting the last message (XEP-0308: edit-last or ArrowUp when empty), emoji
// at the caret, and files (XEP-0363 upload, then a message with an XEP-0066 link) from the
// file picker, drag and drop, or paste.
import { byTestId } from './dom.js';
import { errorText, t } from './i18n.js';
import { EmojiPicker } from './emoji.js';
import { renderPending } from './messages.js';

const PAUSE_MS = 5000; // XEP-0085 §5.2: no typing for a few seconds = paused

export class Composer {
  constructor(app, chat) {
    this.app = app;
    this.chat = chat;
    this.conv = null;
    this.form = document.getElementById('composer-form');
    this.input = byTestId('composer');
    this.editLastButton = byTestId('edit-last');
    this.editBar = document.getElementById('edit-bar');
    this.editPreview = document.getElementById('edit-preview');
    this.attachInput = byTestId('attach-input');
    this.drafts = new Map();
    this.pending = new Map(); // conversation -> [<li>] uploads in progress
    this.sentState = null; // last chat state sent in this conversation
    this.pauseTimer = null;
    this.editing = null;
    this.emoji = new EmojiPicker(byTestId('emoji-picker'), byTestId('emoji-toggle'),
      (ch) => this.insertText(ch));

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => this.onKey(e));
    this.input.addEventListener('input', () => this.onInput());
    this.input.addEventListener('paste', (e) => this.onPaste(e));
    this.editLastButton.addEventListener('click', () => this.editLast());
    document.getElementById('edit-cancel').addEventListener('click', () => this.cancelEdit());
    this.attachInput.addEventListener('change', () => {
      const files = [...this.attachInput.files];
      this.attachInput.value = '';
      this.sendFiles(files);
    });
    this.setupDrop();
  }

  get client() {
    return this.app.client;
  }

  switchTo(conv) {
    this.leave();
    this.conv = conv;
    this.input.value = this.drafts.get(conv.jid) || '';
    this.cancelEdit();
    this.refreshEditLast();
  }

  /** Leaving the conversation: keep the draft, tell the peer we stopped typing. */
  leave() {
    const conv = this.conv;
    if (!conv) return;
    this.drafts.set(conv.jid, this.editing ? '' : this.input.value);
    if (this.sentState === 'composing') this.sendState(this.input.value ? 'paused' : 'active');
    clearTimeout(this.pauseTimer);
    this.sentState = null;
    this.emoji.close();
    this.conv = null;
  }

  /** Off while we are out of a group (kicked, or not entered yet). */
  setEnabled(on) {
    if (this.enabled === on) return;
    this.enabled = on;
    this.form.classList.toggle('disabled', !on);
    for (const el of this.form.querySelectorAll('button, textarea, input')) el.disabled = !on;
    this.input.setAttribute('placeholder', t(on ? 'chat.placeholder' : 'group.notJoined'));
    if (!on) {
      this.emoji.close();
      this.cancelEdit();
    }
  }

  focus() {
    if (window.matchMedia('(min-width: 720px)').matches) this.input.focus();
  }

  relabel() {
    this.emoji.relabel();
    this.input.setAttribute('placeholder', t(this.enabled === false ? 'group.notJoined' : 'chat.placeholder'));
  }

  // --- typing --------------------------------------------------------------------------

  sendState(state) {
    const conv = this.conv;
    if (!conv || this.sentState === state) return;
    this.sentState = state;
    try {
      this.client.sendChatState(conv.jid, state);
    } catch (err) {
      console.warn('chat state', err);
    }
  }

  onInput() {
    clearTimeout(this.pauseTimer);
    if (this.input.value.trim()) {
      this.sendState('composing');
      this.pauseTimer = setTimeout(() => this.sendState('paused'), PAUSE_MS);
    } else if (this.sentState === 'composing' || this.sentState === 'paused') {
      this.sendState('active');
    }
  }

  onKey(e) {
    if (e.isComposing || e.keyCode === 229) return; // an IME (e.g. pinyin) is composing
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      this.submit();
    } else if (e.key === 'ArrowUp' && this.input.value === '') {
      if (this.editLast()) e.preventDefault();
    } else if (e.key === 'Escape' && this.editing) {
      this.cancelEdit();
      this.input.value = '';
    }
  }

  insertText(text) {
    const el = this.input;
    const start = el.selectionStart ?? el.value.length;
    const end = el.selectionEnd ?? el.value.length;
    el.setRangeText(text, start, end, 'end');
    el.focus();
    this.onInput();
  }

  // --- sending -------------------------------------------------------------------------

  async submit() {
    const conv = this.conv;
    const body = this.input.value;
    if (!conv || !body.trim()) return;
    clearTimeout(this.pauseTimer);
    const editing = this.editing;
    this.input.value = '';
    this.drafts.delete(conv.jid);
    this.cancelEdit();
    try {
      if (editing && await this.client.correctLast(conv.jid, body)) {
        // shown through the client's 'correction' event
      } else if (conv.kind === 'group') {
        const msg = await this.client.sendGroupMessage(conv.jid, body);
        if (msg && msg.id) this.app.onMessage({ ...msg, type: 'groupchat', mine: true, with: conv.jid });
      } else {
        const msg = await this.client.sendMessage(conv.jid, body);
        if (msg && msg.id) this.app.onMessage({ ...msg, mine: true, with: conv.jid });
      }
      // A chat message carries <active/> itself (XEP-0085 §5.4).
      this.sentState = conv.kind === 'chat' ? 'active' : null;
    } catch (err) {
      if (!this.input.value) this.input.value = body;
      this.app.toast(errorText(err), 'error');
    }
    this.refreshEditLast();
  }

  // --- corrections ---------------------------------------------------------------------

  /** The last own message, if it is text and the client can correct it (the same id). */
  lastEditable() {
    const conv = this.conv;
    const m = conv?.lastMine();
    if (!m || !m.body || (m.oob && m.body.trim() === m.oob)) return null;
    const last = this.client.lastSent?.(conv.jid);
    return last && last.id === m.id ? m : null;
  }

  refreshEditLast() {
    this.editLastButton.hidden = !this.lastEditable();
  }

  /** Put the last own message in the composer; the next send corrects it. */
  editLast() {
    const m = this.lastEditable();
    if (!m) return false;
    this.editing = m;
    this.input.value = m.body;
    this.editPreview.textContent = m.body;
    this.editBar.hidden = false;
    this.input.focus();
    this.input.setSelectionRange(m.body.length, m.body.length);
    return true;
  }

  cancelEdit() {
    this.editing = null;
    this.editBar.hidden = true;
    this.editPreview.textContent = '';
  }

  // --- files ---------------------------------------------------------------------------

  pendingItems() {
    return (this.conv && this.pending.get(this.conv.jid)) || [];
  }

  async sendFiles(files) {
    const conv = this.conv;
    if (!conv) return;
    for (const file of files) {
      const li = renderPending(file.name || 'file');
      if (!this.pending.has(conv.jid)) this.pending.set(conv.jid, []);
      this.pending.get(conv.jid).push(li);
      if (this.conv === conv) {
        this.chat.list.append(li);
        this.chat.scrollToBottom();
      }
      try {
        const url = await this.client.upload(file);
        const msg = conv.kind === 'group'
          ? await this.client.sendGroupMessage(conv.jid, url, { oob: url })
          : await this.client.sendMessage(conv.jid, url, { oob: url });
        if (msg && msg.id) {
          this.app.onMessage({
            ...msg, mine: true, with: conv.jid, ...(conv.kind === 'group' ? { type: 'groupchat' } : {}),
          });
        }
      } catch (err) {
        this.app.toast(t('chat.uploadFailed', { text: errorText(err) }), 'error');
      } finally {
        const list = this.pending.get(conv.jid) || [];
        list.splice(list.indexOf(li), 1);
        li.remove();
      }
    }
  }

  onPaste(e) {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) {
      e.preventDefault();
      this.sendFiles(files);
    }
  }

  setupDrop() {
    const zone = this.chat.el;
    const overlay = document.getElementById('drop-overlay');
    let depth = 0;
    const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
    zone.addEventListener('dragenter', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      overlay.hidden = false;
    });
    zone.addEventListener('dragover', (e) => {
      if (hasFiles(e)) e.preventDefault();
    });
    zone.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) overlay.hidden = true;
    });
    zone.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      overlay.hidden = true;
      this.sendFiles([...e.dataTransfer.files]);
    });
  }
}
