/**
 * Errors of the client layer: one class, `XmppError {condition, text}`, for stanza errors
 * (RFC 6120 §8.3), SASL failures (§6.5), stream errors (§4.9) and local conditions
 * ('timeout', 'disconnected', 'server-signature-mismatch', ...).
 * @module xmpp/errors
 */

import { NS, children, child, text } from './xml.js';

export class XmppError extends Error {
  /**
   * @param {string} condition a defined condition, e.g. 'conflict', 'not-authorized'
   * @param {string} [text] human-readable text from the server, if any
   * @param {string} [type] the error type ('cancel', 'auth', 'wait', ...) or 'sasl'/'stream'
   */
  constructor(condition, text = '', type = '') {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'XmppError';
    this.condition = condition;
    this.text = text || '';
    this.type = type;
  }
}

/**
 * The error of an error stanza (`<iq type='error'>`, message or presence).
 * @param {Element} stanza
 * @returns {XmppError}
 */
export function stanzaError(stanza) {
  const error = child(stanza, 'error');
  if (!error) return new XmppError('undefined-condition');
  let condition = 'undefined-condition';
  for (const c of children(error)) {
    if (c.namespaceURI === NS.STANZAS_ERR && c.localName !== 'text') {
      condition = c.localName;
      break;
    }
  }
  return new XmppError(condition, text(error, 'text', NS.STANZAS_ERR) || '',
    error.getAttribute('type') || '');
}

/**
 * The error of a SASL <failure/> or a <stream:error/>.
 * @param {Element} el
 * @param {string} ns the namespace of the conditions
 * @param {string} type 'sasl' or 'stream'
 */
export function elementError(el, ns, type) {
  let condition = 'undefined-condition';
  for (const c of children(el)) {
    if (c.namespaceURI === ns && c.localName !== 'text') {
      condition = c.localName;
      break;
    }
  }
  return new XmppError(condition, text(el, 'text', ns) || '', type);
}
