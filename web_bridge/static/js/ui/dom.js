// DOM building without HTML parsing: every piece of user text goes in as a text node.
//
// h(tag, props, ...children) creates an element. props: `class` (string or array),
// attributes from an allow-list (plus data-* and aria-*), `on` ({event: handler}) and a few
// properties (`value`, `checked`, `hidden`, `disabled`, `selected`). `href`/`src` accept only
// http:, https:, blob: and data:image/ URLs (never javascript:). Children are Nodes or strings
// (strings become text nodes); null/false/undefined are skipped, arrays are flattened.

const SVG_NS = 'http://www.w3.org/2000/svg';

const ATTRS = new Set([
  'id', 'type', 'name', 'placeholder', 'title', 'alt', 'for', 'role', 'tabindex', 'lang',
  'dir', 'autocomplete', 'maxlength', 'minlength', 'rows', 'accept', 'multiple', 'required',
  'readonly', 'download', 'target', 'rel', 'width', 'height', 'loading', 'decoding',
  'spellcheck', 'enterkeyhint', 'inputmode', 'autocapitalize', 'value', 'datetime',
  'href', 'src',
]);
const PROPS = new Set(['value', 'checked', 'hidden', 'disabled', 'selected']);
const SVG_ATTRS = new Set([
  'viewBox', 'd', 'fill', 'stroke', 'stroke-width', 'stroke-linecap', 'stroke-linejoin',
  'cx', 'cy', 'r', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'rx', 'ry', 'width', 'height', 'points',
  'aria-hidden', 'focusable', 'class',
]);

/** The URL if it is safe for href/src (http, https, blob, data:image/), else null. */
export function safeUrl(url) {
  if (typeof url !== 'string') return null;
  const value = url.trim();
  if (/^data:image\/(png|jpe?g|gif|webp|avif|bmp);/i.test(value)) return value;
  try {
    const parsed = new URL(value, location.href);
    if (['http:', 'https:', 'blob:'].includes(parsed.protocol)) return parsed.href;
  } catch {
    // not a URL at all
  }
  return null;
}

function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) return;
  if (name === 'href' || name === 'src') {
    const url = safeUrl(String(value));
    if (url) el.setAttribute(name, url);
    return;
  }
  if (ATTRS.has(name) || name.startsWith('data-') || name.startsWith('aria-')) {
    el.setAttribute(name, value === true ? '' : String(value));
  }
}

export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
  return parent;
}

/** Create an element; see the module comment. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === 'class') {
      const names = Array.isArray(value) ? value.filter(Boolean) : String(value || '').split(/\s+/);
      for (const cls of names) if (cls) el.classList.add(cls);
    } else if (name === 'on') {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (PROPS.has(name)) {
      if (name === 'value' && tag === 'option') el.setAttribute('value', String(value));
      el[name] = value;
    } else {
      setAttr(el, name, value);
    }
  }
  return append(el, children);
}

/** An inline SVG from a list of [tag, attrs] shapes (icons are constants, never user data). */
export function svg(shapes, cls = 'icon') {
  const root = document.createElementNS(SVG_NS, 'svg');
  const attrs = {
    viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', 'stroke-width': '2',
    'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true',
    focusable: 'false', class: cls,
  };
  for (const [name, value] of Object.entries(attrs)) root.setAttribute(name, value);
  for (const [tag, shapeAttrs] of shapes) {
    const shape = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(shapeAttrs)) {
      if (SVG_ATTRS.has(name)) shape.setAttribute(name, value);
    }
    root.appendChild(shape);
  }
  return root;
}

/** Remove every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace the children of `el`. */
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

/** The first element with this data-testid inside `root`. */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

export function toggleClass(el, cls, on) {
  el.classList.toggle(cls, Boolean(on));
}
