/**
 * Image helpers for avatars (XEP-0084 §3.1 recommends small PNG or JPEG images): the size of
 * an image, and a smaller copy when it is too big for a PEP item. Uses createImageBitmap and
 * OffscreenCanvas (no document); where they are missing the image is used as it is.
 * @module xmpp/images
 */

import { XmppError } from './errors.js';

/**
 * Width and height of an image, or null when the browser cannot decode it here.
 * @param {Blob} blob
 * @returns {Promise<{width: number, height: number}|null>}
 */
export async function imageSize(blob) {
  if (typeof createImageBitmap !== 'function') return null;
  try {
    const bitmap = await createImageBitmap(blob);
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size;
  } catch {
    return null;
  }
}

/**
 * The image scaled down (at most 256 px a side, then smaller) until it fits `maxBytes`.
 * @param {Blob} blob
 * @param {number} maxBytes
 * @returns {Promise<Blob>}
 * @throws {XmppError} 'not-acceptable' when the image cannot be made small enough
 */
export async function shrinkImage(blob, maxBytes) {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') {
    if (blob.size <= maxBytes && /^image\//.test(blob.type)) return blob;
    throw new XmppError('not-acceptable', 'the image is too large');
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new XmppError('not-acceptable', 'not an image');
  }
  try {
    for (let side = 256; side >= 32; side = Math.floor(side * 0.7)) {
      const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
      const w = Math.max(1, Math.round(bitmap.width * scale));
      const h = Math.max(1, Math.round(bitmap.height * scale));
      const canvas = new OffscreenCanvas(w, h);
      canvas.getContext('2d').drawImage(bitmap, 0, 0, w, h);
      for (const type of ['image/png', 'image/jpeg']) {
        const out = await canvas.convertToBlob({ type, quality: 0.85 });
        if (out.size <= maxBytes) return out;
      }
    }
  } finally {
    bitmap.close();
  }
  throw new XmppError('not-acceptable', 'the image is too large');
}
