// One message as a bubble: text (links made clickable, never HTML), an inline image or a
// file link for uploads (XEP-0066/XEP-0363), sender (groups), time, "edited", receipts.
import { h, safeUrl } from './dom.js';
import { icon } from './icons.js';
import { formatTime, t } from './i18n.js';
import { colourIndex } from './avatar.js';

const IMAGE_EXT = /\.(png|jpe?g|gif|webp|avif|bmp)$/i;
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
const EMOJI_ONLY = /^(?:\p{Extended_Pictographic}|\p{Emoji_Component}|\u200d|\ufe0f|\s){1,24}$/u;

function pathOf(url) {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}

/** The file name at the end of a URL's path. */
export function fileName(url) {
  const last = pathOf(url).split('/').filter(Boolean).pop() || '';
  try {
    return decodeURIComponent(last) || url;
  } catch {
    return last || url;
  }
}

export function isImageUrl(url) {
  return IMAGE_EXT.test(pathOf(url));
}

/** Pictures load inline from https:, blob: or our own origin (the CSP's img-src). */
function inlineable(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'https:' || u.protocol === 'blob:' || u.origin === location.origin;
  } catch {
    return false;
  }
}

/** The attachment URL of a message: its OOB link, or a body that is one image URL. */
export function attachmentOf(m) {
  if (m.oob && safeUrl(m.oob)) return m.oob;
  const body = (m.body || '').trim();
  if (/^https?:\/\/\S+$/i.test(body) && isImageUrl(body)) return body;
  return null;
}

/** A one-line summary of a message for the lists. */
export function preview(m) {
  const url = attachmentOf(m);
  let text;
  if (url && (m.body || '').trim() === url) {
    text = isImageUrl(url) ? `📷 ${t('chat.photo')}` : `📎 ${fileName(url)}`;
  } else {
    text = (m.body || '').replace(/\s+/g, ' ').trim();
  }
  if (m.mine) return `${t('common.you')}: ${text}`;
  if (m.kind === 'group' && m.nick) return `${m.nick}: ${text}`;
  return text;
}

/** Text with http(s) links as <a>; everything else as text nodes. */
function linkify(text) {
  const out = [];
  let at = 0;
  for (const match of text.matchAll(URL_RE)) {
    const url = match[0].replace(/[.,;:!?)\]]+$/, '');
    if (match.index > at) out.push(text.slice(at, match.index));
    const href = safeUrl(url);
    out.push(href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, url) : url);
    at = match.index + url.length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function fileLink(href, url) {
  const name = fileName(url);
  return h('a', {
    class: 'file-link', 'data-testid': 'message-file', href, download: name,
    target: '_blank', rel: 'noopener noreferrer', title: name,
  },
  h('span', { class: 'file-icon' }, icon('file')),
  h('span', { class: 'file-text' },
    h('span', { class: 'file-name' }, name),
    h('span', { class: 'file-kind' }, t('chat.file'))),
  h('span', { class: 'file-dl' }, icon('download')));
}

function attachment(url, app) {
  const href = safeUrl(url);
  if (!href) return null;
  if (isImageUrl(url) && inlineable(href)) {
    const img = h('img', {
      class: 'msg-image', 'data-testid': 'message-image', src: href, alt: fileName(url),
      decoding: 'async',
    });
    img.addEventListener('load', () => app.chat.imageLoaded(img));
    // A picture that does not load (expired upload, not an image) becomes a plain link.
    img.addEventListener('error', () => img.parentElement?.replaceWith(fileLink(href, url)));
    return h('a', {
      class: 'media-link', href, target: '_blank', rel: 'noopener noreferrer',
      title: t('chat.openImage'),
      on: { click: (e) => { e.preventDefault(); app.showImage(href); } },
    }, img);
  }
  return fileLink(href, url);
}

/** The <li> of a message. `opts`: {group: bool, first: bool (first of a run), app}. */
export function renderMessage(m, { group, first, app }) {
  const url = attachmentOf(m);
  const body = m.body || '';
  const showBody = !(url && body.trim() === url) && body !== '';
  const media = url ? attachment(url, app) : null;
  const jumbo = showBody && !media && EMOJI_ONLY.test(body) && /\p{Extended_Pictographic}/u.test(body);
  const meta = h('span', { class: 'meta' },
    m.edited ? h('span', { class: 'edited', 'data-testid': 'message-edited' }, t('chat.edited')) : null,
    h('time', { class: 'time', datetime: m.stamp.toISOString(), title: m.stamp.toLocaleString() },
      formatTime(m.stamp)),
    m.mine && m.kind === 'chat' && !m.pending
      ? h('span', {
        class: ['receipt', m.receipt], 'data-testid': 'message-receipt', 'data-state': m.receipt,
        title: t(m.receipt === 'delivered' ? 'chat.delivered' : 'chat.sent'),
      }, icon(m.receipt === 'delivered' ? 'checks' : 'check'),
      h('span', { class: 'sr-only' }, m.receipt === 'delivered' ? '✓✓' : '✓'))
      : null);
  const bubble = h('div', {
    class: ['bubble', media && 'has-media', media && !showBody && 'media-only', jumbo && 'jumbo'],
  },
  group && !m.mine
    ? h('span', {
      class: ['sender', `nc-${colourIndex(m.nick || m.from)}`, !first && 'repeat'],
      'data-testid': 'message-sender',
    }, m.nick || m.from)
    : null,
  media,
  showBody ? h('span', { class: 'body', 'data-testid': 'message-body', dir: 'auto' }, linkify(body)) : null,
  meta);
  return h('li', {
    class: ['message', m.mine && 'mine', m.pending && 'pending', first && 'first'],
    'data-testid': m.pending ? null : 'message', 'data-id': m.id,
  }, bubble);
}

/** The day divider shown before the first message of a day. */
export function renderDay(label) {
  return h('li', { class: 'day', role: 'separator' }, h('span', {}, label));
}

export function renderPending(name) {
  return h('li', { class: 'message mine pending' },
    h('div', { class: 'bubble' },
      h('span', { class: 'upload-line' }, h('span', { class: 'spinner small' }), t('chat.uploading', { name }))));
}
