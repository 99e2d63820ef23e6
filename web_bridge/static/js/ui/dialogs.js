// Dialogs (open, close, a form's submit with its error), the image viewer and toasts: the
// notices of the application shell (views.js), as a mixin of App.
import { safeUrl } from './dom.js';
import { errorText } from './i18n.js';

const TOAST_MS = 5000;

/** @param {ObjectConstructor} Base */
export const DialogsMixin = (Base) => class extends Base {
  setupDialogs() {
    for (const dialog of document.querySelectorAll('dialog.modal')) {
      for (const button of dialog.querySelectorAll('[data-close]')) {
        button.addEventListener('click', () => this.closeDialog(dialog));
      }
      // A click on the backdrop (the dialog box itself, outside the form) closes it; a text
      // selection that merely ends there does not.
      let fromBackdrop = false;
      dialog.addEventListener('pointerdown', (e) => {
        fromBackdrop = e.target === dialog;
      });
      dialog.addEventListener('click', (e) => {
        if (e.target === dialog && fromBackdrop) this.closeDialog(dialog);
      });
    }
    const lightbox = document.getElementById('lightbox');
    lightbox.addEventListener('click', () => lightbox.close());
  }

  openDialog(dialog) {
    this.dialogError(dialog, '');
    if (!dialog.open) dialog.showModal();
    const first = dialog.querySelector('input:not([type=file]), textarea, select');
    if (first) first.focus();
  }

  closeDialog(dialog) {
    if (dialog.open) dialog.close();
  }

  closeAllDialogs() {
    for (const dialog of document.querySelectorAll('dialog')) if (dialog.open) dialog.close();
  }

  dialogError(dialog, text) {
    const el = dialog.querySelector('.form-error');
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  /**
   * Submit handling for a dialog's form: `action(form)` runs with the submit button disabled;
   * its error shows in the dialog; on success the dialog closes unless it returns false.
   */
  bindDialog(dialog, action) {
    const form = dialog.querySelector('form');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const button = form.querySelector('[type=submit]');
      if (button.disabled) return;
      button.disabled = true;
      this.dialogError(dialog, '');
      try {
        if ((await action(form)) !== false) this.closeDialog(dialog);
      } catch (err) {
        this.dialogError(dialog, errorText(err));
      } finally {
        button.disabled = false;
      }
    });
  }

  showImage(url) {
    const src = safeUrl(url);
    if (!src) return;
    const lightbox = document.getElementById('lightbox');
    document.getElementById('lightbox-img').setAttribute('src', src);
    lightbox.showModal();
  }

  toast(text, kind = 'info') {
    const el = this.toastEl;
    el.textContent = text;
    el.classList.toggle('error', kind === 'error');
    el.hidden = false;
    el.classList.remove('show');
    void el.offsetWidth; // restart the entrance animation
    el.classList.add('show');
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      el.hidden = true;
      el.classList.remove('show');
    }, kind === 'error' ? TOAST_MS * 1.5 : TOAST_MS);
  }
};
