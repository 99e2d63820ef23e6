/**
 * XML for the client layer: building stanzas with the DOM (createElementNS, so every text and
 * attribute is escaped by XMLSerializer — user text is never concatenated into markup), parsing
 * RFC 7395 frames with DOMParser, and small readers (child, children, text).
 *
 * Stanzas are built as light trees with `x(name, attrs, ...children)` and turned into DOM
 * elements by `build()`, which gives each element without an explicit `xmlns` the namespace of
 * its parent (as XML itself does), so builders read like the XML they make.
 * @module xmpp/xml
 */

export const NS = Object.freeze({
  CLIENT: 'jabber:client',
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing',
  STREAM: 'http://etherx.jabber.org/streams',
  STREAMS_ERR: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS_ERR: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  SASL2: 'urn:xmpp:sasl:2',
  BIND2: 'urn:xmpp:bind:0',
  FAST: 'urn:xmpp:fast:0',
  SM: 'urn:xmpp:sm:3',
  REGISTER: 'jabber:iq:register',
  ROSTER: 'jabber:iq:roster',
  CARBONS: 'urn:xmpp:carbons:2',
  FORWARD: 'urn:xmpp:forward:0',
  DELAY: 'urn:xmpp:delay',
  MAM: 'urn:xmpp:mam:2',
  RSM: 'http://jabber.org/protocol/rsm',
  DATA: 'jabber:x:data',
  CHATSTATES: 'http://jabber.org/protocol/chatstates',
  RECEIPTS: 'urn:xmpp:receipts',
  CORRECT: 'urn:xmpp:message-correct:0',
  SID: 'urn:xmpp:sid:0',
  OOB: 'jabber:x:oob',
  HINTS: 'urn:xmpp:hints',
  MUC: 'http://jabber.org/protocol/muc',
  MUC_USER: 'http://jabber.org/protocol/muc#user',
  MUC_ADMIN: 'http://jabber.org/protocol/muc#admin',
  MUC_OWNER: 'http://jabber.org/protocol/muc#owner',
  CONFERENCE: 'jabber:x:conference',
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
  CAPS: 'http://jabber.org/protocol/caps',
  PUBSUB: 'http://jabber.org/protocol/pubsub',
  PUBSUB_EVENT: 'http://jabber.org/protocol/pubsub#event',
  NICK: 'http://jabber.org/protocol/nick',
  AVATAR_DATA: 'urn:xmpp:avatar:data',
  AVATAR_META: 'urn:xmpp:avatar:metadata',
  BOOKMARKS: 'urn:xmpp:bookmarks:1',
  VCARD: 'vcard-temp',
  VCARD_UPDATE: 'vcard-temp:x:update',
  UPLOAD: 'urn:xmpp:http:upload:0',
  PING: 'urn:xmpp:ping',
  VERSION: 'jabber:iq:version',
});

/** One document owns every element we build (elements are imported into others as needed). */
const DOC = document.implementation.createDocument(null, null, null);

/**
 * A stanza tree node: `x('message', {to, type: 'chat'}, x('body', {}, text))`.
 * Attributes whose value is null/undefined/false are left out; `xmlns` sets the namespace.
 * Children may be nodes, DOM elements, strings (text) or arrays of those; null is skipped.
 * @param {string} name
 * @param {Object<string, *>} [attrs]
 * @param {...*} children
 * @returns {{name: string, attrs: Object, children: Array}}
 */
export function x(name, attrs = {}, ...children) {
  return { name, attrs: attrs || {}, children: children.flat(Infinity) };
}

/**
 * The DOM element for a tree node (or a DOM element, imported as is).
 * @param {*} node
 * @param {string|null} [ns] the namespace inherited from the parent
 * @returns {Element}
 */
export function build(node, ns = NS.CLIENT) {
  if (node instanceof Element) return DOC.importNode(node, true);
  const own = node.attrs.xmlns;
  const uri = own !== undefined ? own : ns;
  const el = DOC.createElementNS(uri, node.name);
  for (const [key, value] of Object.entries(node.attrs)) {
    if (key === 'xmlns' || value === undefined || value === null || value === false) continue;
    if (key === 'xml:lang') el.setAttributeNS('http://www.w3.org/XML/1998/namespace', key, String(value));
    else el.setAttribute(key, String(value));
  }
  for (const child of node.children) {
    if (child === null || child === undefined || child === false) continue;
    if (typeof child === 'string' || typeof child === 'number') {
      el.appendChild(DOC.createTextNode(String(child)));
    } else {
      el.appendChild(build(child, uri));
    }
  }
  return el;
}

const SERIALIZER = new XMLSerializer();

/**
 * Markup of a node or element (escaped by XMLSerializer).
 * @param {*} node
 * @returns {string}
 */
export function serialize(node) {
  return SERIALIZER.serializeToString(node instanceof Element ? node : build(node));
}

const PARSER = new DOMParser();

/**
 * The element of one frame, or null when it is not well-formed XML.
 * @param {string} text
 * @returns {Element|null}
 */
export function parse(text) {
  const doc = PARSER.parseFromString(text, 'text/xml');
  const root = doc.documentElement;
  // Chromium and Safari insert an XHTML <parsererror>; Firefox makes it the root.
  if (!root || doc.getElementsByTagNameNS('http://www.w3.org/1999/xhtml', 'parsererror').length
      || root.localName === 'parsererror') {
    return null;
  }
  return root;
}

/**
 * Whether `el` is named `name` in namespace `ns` (any namespace when `ns` is omitted).
 * @param {Element|null|undefined} el
 * @param {string} name
 * @param {string} [ns]
 */
export function is(el, name, ns) {
  return !!el && el.localName === name && (ns === undefined || el.namespaceURI === ns);
}

/**
 * The child elements of `el`, optionally only those named `name` (in `ns`).
 * @param {Element|null|undefined} el
 * @param {string} [name]
 * @param {string} [ns]
 * @returns {Element[]}
 */
export function children(el, name, ns) {
  if (!el) return [];
  const out = [];
  for (let c = el.firstElementChild; c; c = c.nextElementSibling) {
    if (name === undefined || is(c, name, ns)) out.push(c);
  }
  return out;
}

/**
 * The first child element named `name` (in `ns`), or null.
 * @param {Element|null|undefined} el
 * @param {string} name
 * @param {string} [ns]
 * @returns {Element|null}
 */
export function child(el, name, ns) {
  if (!el) return null;
  for (let c = el.firstElementChild; c; c = c.nextElementSibling) {
    if (is(c, name, ns)) return c;
  }
  return null;
}

/**
 * The text of `el`, or of its child `name` (in `ns`) when given; null if there is none.
 * @param {Element|null|undefined} el
 * @param {string} [name]
 * @param {string} [ns]
 * @returns {string|null}
 */
export function text(el, name, ns) {
  const target = name === undefined ? el : child(el, name, ns);
  return target ? target.textContent : null;
}

/**
 * XEP-0004: a submitted form with the given fields ({var: value | value[]}).
 * @param {string} formType FORM_TYPE value
 * @param {Object<string, string|string[]|boolean>} fields
 */
export function submitForm(formType, fields) {
  const out = [];
  if (formType) out.push(field('FORM_TYPE', formType, 'hidden'));
  for (const [name, value] of Object.entries(fields)) out.push(field(name, value));
  return x('x', { xmlns: NS.DATA, type: 'submit' }, out);
}

function field(name, value, type) {
  const values = Array.isArray(value) ? value : [value];
  return x('field', { var: name, type }, values.map((v) => x('value', {}, formValue(v))));
}

function formValue(v) {
  if (v === true) return '1';
  if (v === false) return '0';
  return String(v);
}

/**
 * The fields of a XEP-0004 form: Map var -> {type, values, options}.
 * @param {Element|null} form
 * @returns {Map<string, {type: string|null, values: string[], options: string[]}>}
 */
export function readForm(form) {
  const fields = new Map();
  for (const f of children(form, 'field', NS.DATA)) {
    const name = f.getAttribute('var');
    if (!name) continue;
    fields.set(name, {
      type: f.getAttribute('type'),
      values: children(f, 'value', NS.DATA).map((v) => v.textContent),
      options: children(f, 'option', NS.DATA).map((o) => text(o, 'value', NS.DATA) || ''),
    });
  }
  return fields;
}

/**
 * A random id: letters and digits, `n` characters.
 * @param {number} [n]
 */
export function randomId(n = 16) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}
