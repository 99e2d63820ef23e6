// English and Chinese strings (lang/en.js, lang/zh.js). The language follows
// navigator.language until the user picks one (stored in localStorage). Static markup names its strings with data-i18n (text),
// data-i18n-placeholder, data-i18n-title and data-i18n-aria-label; applyStatic() fills them.

import en from './lang/en.js';
import zh from './lang/zh.js';

const STORE_KEY = 'xmppd.lang';
export const LANGS = { en: 'English', zh: '中文' };

const DICTS = { en, zh };
const listeners = new Set();

function detect() {
  try {
    const stored = localStorage.getItem(STORE_KEY);
    if (stored && DICTS[stored]) return stored;
  } catch {
    // storage may be unavailable; fall back to the browser's language
  }
  const wanted = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || 'en'];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (DICTS[base]) return base;
  }
  return 'en';
}

let current = detect();

export function lang() {
  return current;
}

/** The locale tag for Intl and <html lang>. */
export function locale() {
  return current === 'zh' ? 'zh-CN' : 'en';
}

/** The string for `key` with {name} placeholders filled from `params` (as plain text). */
export function t(key, params = {}) {
  const text = DICTS[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/**
 * The text for a server error (XmppError {condition, text}) or any thrown value; `special`
 * maps conditions to keys meant for the situation (e.g. conflict -> 'register.taken').
 */
export function errorText(err, special = {}) {
  const condition = err && err.condition;
  if (condition && special[condition]) return t(special[condition]);
  if (condition && (DICTS[current][`err.${condition}`] || en[`err.${condition}`])) {
    return t(`err.${condition}`);
  }
  if (err && err.text) return err.text;
  if (err && err.message) return err.message;
  return t('err.generic');
}

/** Fill the static strings of `root` (data-i18n* attributes). */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) {
    el.setAttribute('title', t(el.dataset.i18nTitle));
  }
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  }
  document.documentElement.lang = locale();
}

/** Switch the language, remember it and tell the listeners. */
export function setLang(next) {
  if (!DICTS[next] || next === current) return;
  current = next;
  try {
    localStorage.setItem(STORE_KEY, next);
  } catch {
    // not remembered, but still switched
  }
  applyStatic();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

export function formatTime(date) {
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit' }).format(date);
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth()
    && a.getDate() === b.getDate();
}

export function formatDay(date) {
  const now = new Date();
  if (sameDay(date, now)) return t('day.today');
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (sameDay(date, yesterday)) return t('day.yesterday');
  const opts = { month: 'long', day: 'numeric', weekday: 'short' };
  if (date.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return new Intl.DateTimeFormat(locale(), opts).format(date);
}

/** Short time for list rows: the time today, else the date. */
export function formatShort(date) {
  const now = new Date();
  if (sameDay(date, now)) return formatTime(date);
  return new Intl.DateTimeFormat(locale(), { month: 'short', day: 'numeric' }).format(date);
}
