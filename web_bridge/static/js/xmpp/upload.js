/**
 * XEP-0363 HTTP File Upload: find the upload service (disco#items of the domain, the item
 * whose disco#info has urn:xmpp:http:upload:0), ask it for a slot, PUT the file, return the
 * GET URL (to send with XEP-0066 OOB).
 * @module xmpp/upload
 */

import { NS, x, child, children, readForm } from './xml.js';
import { XmppError } from './errors.js';
import { safeHttpUrl } from './chat.js';

// §5: the only headers a client passes from the slot to the PUT.
const ALLOWED_HEADERS = new Set(['authorization', 'cookie', 'expires']);

export class Upload {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    this.service = null; // {jid, maxSize}
  }

  /** §2: the upload service, or null if the server has none. */
  async discover() {
    if (this.service) return this.service;
    const c = this.client;
    const candidates = [];
    try {
      const res = await c.iq(x('iq', { type: 'get', to: c.domain }, x('query', { xmlns: NS.DISCO_ITEMS })));
      for (const item of children(child(res, 'query', NS.DISCO_ITEMS), 'item', NS.DISCO_ITEMS)) {
        const jid = item.getAttribute('jid');
        if (jid && !jid.includes('@')) candidates.push(jid);
      }
    } catch { /* try the usual name */ }
    if (!candidates.includes(`upload.${c.domain}`)) candidates.push(`upload.${c.domain}`);
    for (const jid of candidates) {
      const info = await c.iq(x('iq', { type: 'get', to: jid }, x('query', { xmlns: NS.DISCO_INFO }))).catch(() => null);
      const query = child(info, 'query', NS.DISCO_INFO);
      if (!children(query, 'feature', NS.DISCO_INFO).some((f) => f.getAttribute('var') === NS.UPLOAD)) continue;
      let maxSize = 0;
      for (const form of children(query, 'x', NS.DATA)) {
        const fields = readForm(form);
        if (fields.get('FORM_TYPE')?.values[0] === NS.UPLOAD) maxSize = parseInt(fields.get('max-file-size')?.values[0] || '0', 10) || 0;
      }
      return (this.service = { jid, maxSize });
    }
    return null;
  }

  /**
   * See XmppClient.upload.
   * @param {File|Blob} file
   * @returns {Promise<string>} the GET URL
   */
  async upload(file) {
    const service = await this.discover();
    if (!service) throw new XmppError('feature-not-implemented', 'the server has no file upload');
    if (service.maxSize && file.size > service.maxSize) {
      throw new XmppError('not-acceptable', `the file is larger than ${service.maxSize} bytes`);
    }
    const filename = (file.name || 'file').replace(/[/\\]/g, '_') || 'file';
    const type = file.type || 'application/octet-stream';
    const res = await this.client.iq(x('iq', { type: 'get', to: service.jid },
      x('request', { xmlns: NS.UPLOAD, filename, size: String(file.size), 'content-type': type })));
    const slot = child(res, 'slot', NS.UPLOAD);
    const put = child(slot, 'put', NS.UPLOAD);
    const getUrl = safeHttpUrl(child(slot, 'get', NS.UPLOAD)?.getAttribute('url'));
    const putUrl = safeHttpUrl(put?.getAttribute('url'));
    if (!getUrl || !putUrl) throw new XmppError('undefined-condition', 'the upload service gave no usable URL');
    const headers = { 'Content-Type': type };
    for (const h of children(put, 'header', NS.UPLOAD)) {
      const name = (h.getAttribute('name') || '').trim();
      if (ALLOWED_HEADERS.has(name.toLowerCase())) headers[name] = h.textContent.replace(/[\r\n]/g, '');
    }
    let response;
    try {
      response = await fetch(putUrl, { method: 'PUT', body: file, headers, credentials: 'omit' });
    } catch (e) {
      throw new XmppError('remote-server-not-found', `upload failed: ${e && e.message}`);
    }
    if (!response.ok) throw new XmppError('undefined-condition', `upload failed: HTTP ${response.status}`);
    return getUrl;
  }
}
