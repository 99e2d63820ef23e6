/**
 * The user's profile and the contacts' ones: XEP-0172 nick (PEP and vCard NICKNAME), XEP-0084
 * avatars (PEP data + metadata; a XEP-0153 photo hash in presence or a vCard PHOTO as the
 * fallback), and XEP-0115 capabilities, through which the server learns that we want the
 * notifications of nicks, avatars and bookmarks (XEP-0163 §4.3.1 "+notify").
 * @module xmpp/profile
 */

import { NS, x, child, children, text } from './xml.js';
import { bare } from './jid.js';
import { toBase64 } from './sasl.js';
import { XmppError } from './errors.js';
import { shrinkImage, imageSize } from './images.js';

const NODE = 'https://xmppd.invalid/web';
const IDENTITY = { category: 'client', type: 'web', name: 'xmppd web' };
const FEATURES = [
  NS.DISCO_INFO, NS.CAPS, NS.CHATSTATES, NS.RECEIPTS, NS.CORRECT, NS.OOB, NS.CONFERENCE,
  NS.MUC, NS.PING, 'urn:xmpp:carbons:2', `${NS.NICK}+notify`, `${NS.AVATAR_META}+notify`,
  `${NS.BOOKMARKS}+notify`, NS.SID,
];
const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp)$/;
const MAX_AVATAR_BYTES = 90 * 1024; // base64 of it stays under a PEP item's 128 KiB

async function sha1Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-1', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Profile {
  /** @param {import('./client.js').XmppClient} client */
  constructor(client) {
    this.client = client;
    this.nick = '';
    this.avatarUrl = null;
    this.avatarId = null;
    this.ver = null;
    this.people = new Map(); // bare -> {nick, avatarId, avatarUrl} for anyone seen
    this._fetching = new Map(); // bare -> {id, promise} of the avatar being fetched
    this._queue = Promise.resolve(); // profile changes one at a time (vCard read-modify-write)
  }

  /** XEP-0115 §5.1: the verification string of our identity and features. */
  async computeVer() {
    if (this.ver) return this.ver;
    const s = `${IDENTITY.category}/${IDENTITY.type}//${IDENTITY.name}<${[...FEATURES].sort().join('<')}<`;
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', new TextEncoder().encode(s)));
    this.ver = toBase64(digest);
    return this.ver;
  }

  /** The <c/> element for our presence, or null before computeVer(). */
  capsElement() {
    return this.ver ? x('c', { xmlns: NS.CAPS, hash: 'sha-1', node: NODE, ver: this.ver }) : null;
  }

  /** XEP-0030 / XEP-0115 §6.2: our disco#info, also under node#ver. */
  discoInfo(iq) {
    const node = child(iq, 'query', NS.DISCO_INFO).getAttribute('node');
    if (node && node !== `${NODE}#${this.ver}`) throw new XmppError('item-not-found');
    return x('query', { xmlns: NS.DISCO_INFO, node: node || undefined },
      x('identity', IDENTITY), FEATURES.map((f) => x('feature', { var: f })));
  }

  _serial(fn) {
    const run = this._queue.then(fn, fn);
    this._queue = run.catch(() => {});
    return run;
  }

  /** The own nick and avatar, after login. */
  async load() {
    const c = this.client;
    const nick = await this._items(c.bareJid, NS.NICK).catch(() => []);
    const el = nick.length ? child(nick[nick.length - 1], 'nick', NS.NICK) : null;
    if (el) this.nick = el.textContent;
    else {
      const vcard = await this._vcard(c.bareJid).catch(() => null);
      this.nick = text(vcard, 'NICKNAME', NS.VCARD) || this.nick;
    }
    const meta = await this._items(c.bareJid, NS.AVATAR_META).catch(() => []);
    if (meta.length) await this._metadata(c.bareJid, meta[meta.length - 1]);
    c.emit('profile', { jid: c.bareJid });
  }

  async _items(jid, node, id) {
    const res = await this.client.iq(x('iq', { type: 'get', to: jid }, x('pubsub', { xmlns: NS.PUBSUB },
      x('items', { node, max_items: id ? undefined : '1' }, id ? x('item', { id }) : null))));
    return children(child(child(res, 'pubsub', NS.PUBSUB), 'items', NS.PUBSUB), 'item', NS.PUBSUB);
  }

  async _vcard(jid) {
    const res = await this.client.iq(x('iq', { type: 'get', to: jid === this.client.bareJid ? undefined : jid },
      x('vCard', { xmlns: NS.VCARD })));
    return child(res, 'vCard', NS.VCARD);
  }

  async _publish(node, id, payload) {
    await this.client.iq(x('iq', { type: 'set' }, x('pubsub', { xmlns: NS.PUBSUB },
      x('publish', { node }, x('item', { id }, payload)))));
  }

  /** See XmppClient.setNickname. */
  setNickname(nick) {
    return this._serial(async () => {
      const value = String(nick || '').trim();
      await this._publish(NS.NICK, 'current', x('nick', { xmlns: NS.NICK }, value));
      this.nick = value;
      this.client.emit('profile', { jid: this.client.bareJid });
      // vCard NICKNAME too, for clients that read only the vCard; the rest of it is kept.
      const vcard = (await this._vcard(this.client.bareJid).catch(() => null))?.cloneNode(true)
        || document.implementation.createDocument(NS.VCARD, 'vCard', null).documentElement;
      for (const old of children(vcard, 'NICKNAME', NS.VCARD)) vcard.removeChild(old);
      const el = vcard.ownerDocument.createElementNS(NS.VCARD, 'NICKNAME');
      el.textContent = value;
      vcard.appendChild(el);
      await this.client.iq(x('iq', { type: 'set' }, vcard));
    });
  }

  /** See XmppClient.setAvatar: XEP-0084 §4.1, data first, then metadata. */
  setAvatar(file) {
    return this._serial(async () => {
      let blob = file;
      if (!IMAGE_TYPES.test(blob.type || '') || blob.size > MAX_AVATAR_BYTES) blob = await shrinkImage(blob, MAX_AVATAR_BYTES);
      const bytes = new Uint8Array(await blob.arrayBuffer());
      const id = await sha1Hex(bytes);
      const b64 = toBase64(bytes);
      const size = await imageSize(blob);
      await this._publish(NS.AVATAR_DATA, id, x('data', { xmlns: NS.AVATAR_DATA }, b64));
      await this._publish(NS.AVATAR_META, id, x('metadata', { xmlns: NS.AVATAR_META },
        x('info', { bytes: bytes.length, id, type: blob.type, width: size?.width, height: size?.height })));
      this.avatarId = id;
      this.avatarUrl = `data:${blob.type};base64,${b64}`;
      this.client.emit('profile', { jid: this.client.bareJid });
      return this.avatarUrl;
    });
  }

  /**
   * A PEP notification (XEP-0163 §4.3) of a nick or avatar, ours or a contact's.
   * @param {string} from bare JID of the publisher
   * @param {Element} items the event's <items/>
   */
  onEvent(from, items) {
    const node = items.getAttribute('node');
    const item = children(items, 'item', NS.PUBSUB_EVENT).pop();
    if (!item) return;
    if (node === NS.NICK) {
      this._setNick(from, text(item, 'nick', NS.NICK) || '');
    } else if (node === NS.AVATAR_META) {
      this._metadata(from, item).catch(() => {});
    }
  }

  _setNick(jid, nick) {
    const c = this.client;
    if (jid === c.bareJid) this.nick = nick;
    else {
      this._person(jid).nick = nick;
      const contact = c.contacts.get(jid);
      if (contact) contact.nick = nick;
      const request = c.requests.get(jid);
      if (request) request.nick = nick;
      c.emit('contacts', {});
    }
    c.emit('profile', { jid });
  }

  _person(jid) {
    let p = this.people.get(jid);
    if (!p) this.people.set(jid, p = { nick: '', avatarId: null, avatarUrl: null });
    return p;
  }

  async _metadata(jid, item) {
    const meta = child(item, 'metadata', NS.AVATAR_META);
    const info = children(meta, 'info', NS.AVATAR_META).find((i) => !i.getAttribute('url')) || null;
    if (!info) return this._setAvatar(jid, null, null); // §4.2: avatar disabled
    await this._fetchAvatar(jid, info.getAttribute('id'), info.getAttribute('type'));
  }

  /** XEP-0084 §4.3 data by id; else the vCard PHOTO (XEP-0153). One fetch per image at a time. */
  _fetchAvatar(jid, id, type) {
    const own = jid === this.client.bareJid;
    const known = own ? this.avatarId : this.people.get(jid)?.avatarId;
    if (!id || known === id) return Promise.resolve();
    const running = this._fetching.get(jid);
    if (running && running.id === id) return running.promise;
    const promise = this._download(jid, id, type).finally(() => {
      if (this._fetching.get(jid)?.promise === promise) this._fetching.delete(jid);
    });
    this._fetching.set(jid, { id, promise });
    return promise;
  }

  async _download(jid, id, type) {
    let b64 = null;
    const items = await this._items(jid, NS.AVATAR_DATA, id).catch(() => []);
    if (items.length) b64 = text(items[0], 'data', NS.AVATAR_DATA);
    if (!b64) {
      const photo = child(await this._vcard(jid).catch(() => null), 'PHOTO', NS.VCARD);
      b64 = text(photo, 'BINVAL', NS.VCARD);
      type = text(photo, 'TYPE', NS.VCARD) || type;
    }
    if (!b64) return;
    const mime = IMAGE_TYPES.test(type || '') ? type : 'image/png';
    this._setAvatar(jid, id, `data:${mime};base64,${b64.replace(/\s+/g, '')}`);
  }

  _setAvatar(jid, id, url) {
    const c = this.client;
    if (jid === c.bareJid) {
      this.avatarId = id;
      this.avatarUrl = url;
    } else {
      Object.assign(this._person(jid), { avatarId: id, avatarUrl: url });
      const contact = c.contacts.get(jid);
      if (contact) contact.avatarUrl = url;
      c.emit('contacts', {});
    }
    c.emit('profile', { jid });
  }

  /** XEP-0153 §4.3: a photo hash in a contact's presence names its current avatar. */
  onPresence(jid, el, type) {
    if (type) return;
    const update = child(el, 'x', NS.VCARD_UPDATE);
    const photo = update && child(update, 'photo', NS.VCARD_UPDATE);
    if (!photo) return;
    const hash = photo.textContent.trim();
    if (!hash) {
      if (this.people.get(jid)?.avatarId) this._setAvatar(jid, null, null);
      return;
    }
    this._fetchAvatar(jid, hash, null).catch(() => {});
  }

  /** Apply what we know of a person to a (new) contact entry. */
  decorate(contact) {
    const p = this.people.get(contact.jid);
    if (p) Object.assign(contact, { nick: p.nick || contact.nick, avatarUrl: p.avatarUrl || contact.avatarUrl });
  }

  /** A PEP notification message; true if it was one. */
  onMessage(el) {
    const event = child(el, 'event', NS.PUBSUB_EVENT);
    if (!event) return false;
    const c = this.client;
    const from = bare(el.getAttribute('from') || c.bareJid);
    for (const items of children(event, 'items', NS.PUBSUB_EVENT)) {
      const node = items.getAttribute('node');
      if (node === NS.BOOKMARKS) {
        if (from === c.bareJid) c.bookmarks.onEvent(items);
      } else this.onEvent(from, items);
    }
    return true;
  }
}
