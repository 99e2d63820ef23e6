// Avatars: the person's picture when known, else their initials on a colour picked from the JID.
import { h, safeUrl } from './dom.js';

const COLOURS = 8;

export function colourIndex(key) {
  let hash = 0;
  for (const ch of String(key || '')) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % COLOURS;
}

function firstGrapheme(word) {
  if (typeof Intl !== 'undefined' && Intl.Segmenter) {
    for (const { segment } of new Intl.Segmenter().segment(word)) return segment;
  }
  return Array.from(word)[0] || '';
}

export function initials(name) {
  const words = String(name || '?').trim().split(/[\s._@-]+/).filter(Boolean);
  if (!words.length) return '?';
  const letters = words.slice(0, 2).map(firstGrapheme).join('');
  return (words.length > 1 && /^[\p{L}\p{N}]{2}$/u.test(letters) ? letters : firstGrapheme(words[0]))
    .toUpperCase();
}

/**
 * The avatar element. `testid` goes on the <img> only (the contract: present when known).
 * size: 'sm' | 'md' | 'lg' | 'xl'.
 */
export function avatar({ key, name, url, size = 'md', testid = null }) {
  const src = safeUrl(url);
  if (src) {
    return h('img', {
      class: ['avatar', size], src, alt: '', 'data-testid': testid, decoding: 'async',
    });
  }
  return h('span', { class: ['avatar', size, `av-${colourIndex(key)}`], 'aria-hidden': 'true' },
    initials(name));
}
