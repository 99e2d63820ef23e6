/**
 * How `XmppClient` logs in on a new stream (see client.js's module comment): RFC 6120 SASL or
 * XEP-0388 SASL2 with Bind 2 and XEP-0484 FAST tokens, then stream resumption or a new
 * session. A mixin of the client's session methods.
 * @module xmpp/login
 */

import { NS, child, text } from './xml.js';
import { XmppError } from './errors.js';
import { Connection } from './connection.js';
import { authenticate as authenticateSasl1, choose } from './sasl.js';
import * as sasl2 from './sasl2.js';
import {
  HT_MECHANISM, agentId, claim, expired, fastElement, fastMechanism, requestToken, tokenOf,
  userAgent, withTokenLock,
} from './fast.js';
import { loadLogin, loadSnapshot, offersSm, storeLogin, updateLogin } from './session.js';

/** @param {typeof EventTarget} Base */
export const LoginMixin = (Base) => class extends Base {
  /**
   * A new stream, authenticated; the session resumed (`resume`: if there is one to resume)
   * or a new one started.
   * @param {{password?: string, remember?: boolean, resume?: boolean}} options `password`:
   *   a login with it (else with `_creds`)
   */
  async _connect({ password, remember = false, resume = false }) {
    await this._discover();
    await this.profile.computeVer();
    const features = await this.conn.open();
    const plan = resume ? this._resumable() : null;
    const auth = sasl2.authentication(features);
    if (auth) await this._sasl2(auth, { password, remember, plan });
    else await this._sasl1(features, { password, remember, plan });
  }

  /**
   * Whether this tab has a session to resume: {fresh} (fresh: a reloaded page, whose state
   * comes from the snapshot) or null.
   */
  _resumable() {
    if (!this.sm.resumable) return null;
    const fresh = !this.jid;
    if (fresh && !loadSnapshot(this, this.sm.jid)) {
      this._giveUp();
      return null;
    }
    return { fresh };
  }

  /** RFC 6120 SASL, stream restart, then XEP-0198 resumption or a new session. */
  async _sasl1(features, { password, remember, plan }) {
    const username = this.username;
    const creds = password !== undefined ? { username, password } : this._creds;
    const { mechanism, keys } = await authenticateSasl1(this.conn, features, creds);
    this.mechanism = mechanism;
    if (password !== undefined) {
      this._creds = keys ? { username, keys, remember } : { username, password };
      storeLogin({ username, domain: this.domain, remember, keys });
    }
    const after = await this.conn.restart();
    if (plan && offersSm(after)) {
      const jid = this.sm.jid;
      if (await this.sm.resume()) {
        this._resumed(jid, plan.fresh);
        return;
      }
    }
    if (plan) this._giveUp();
    await this._newSession({ features: after });
  }

  /**
   * XEP-0388: one <authenticate/> with what the session needs inline (see the top).
   */
  async _sasl2(auth, { password, remember, plan }) {
    const username = this.username;
    const offers = sasl2.inlineOffers(auth);
    const fastMech = fastMechanism(auth);
    const creds = password !== undefined ? { username, password } : this._creds;
    const byToken = password === undefined && !!creds.fast;
    let mechanism = null;
    if (byToken) {
      if (fastMech === creds.fast.mechanism) mechanism = HT_MECHANISM;
    } else {
      mechanism = choose(sasl2.mechanisms(auth), creds);
    }
    if (!mechanism) {
      throw new XmppError(creds.fast || creds.keys ? 'credentials-expired' : 'invalid-mechanism',
        'no usable login mechanism', 'sasl');
    }
    const clientId = byToken ? creds.fast.clientId : agentId();
    const wantToken = !byToken && !!fastMech;
    const inlineResume = !!plan && offers.sm;
    // Bind 2 unless resuming the RFC 6120 way, and only in the tab that holds the lock.
    const bind2 = !!offers.bind && (!plan || offers.sm) && await this._claimBind2(clientId);
    const extras = [
      wantToken ? requestToken(fastMech) : null,
      inlineResume ? this.sm.resumeRequest() : null,
      bind2 ? sasl2.bindRequest(offers.bind) : null,
    ];
    const session = { resumed: false, jid: null, leftover: null, smDone: false, carbons: false };
    const resumeJid = this.sm.jid;
    const onSuccess = (success) => {
      if (inlineResume) {
        const answer = child(success, 'resumed', NS.SM) || child(success, 'failed', NS.SM);
        if (this.sm.resumed(answer)) {
          session.resumed = true;
          this.conn.jid = resumeJid;
          return;
        }
        this._giveUp();
      }
      const bound = child(success, 'bound', NS.BIND2);
      if (!bound) return;
      session.jid = this.conn.jid = (text(success, 'authorization-identifier', NS.SASL2) || '').trim();
      session.leftover = this.sm.takeQueue();
      this.sm.forget();
      const sm = child(bound, 'enabled', NS.SM) || child(bound, 'failed', NS.SM);
      if (sm) {
        this.sm.enabledInline(sm, session.jid);
        session.smDone = true;
      }
      session.carbons = offers.bind.has(NS.CARBONS);
    };
    const run = async () => {
      let fast = null;
      if (byToken) {
        fast = this._storedFast();
        if (expired(fast)) throw new XmppError('credentials-expired', 'the token has expired', 'sasl');
        fast.count = (fast.count | 0) + 1; // §4.4: stored before it is used
        this._saveFast();
      }
      const result = await sasl2.authenticate(this.conn, {
        mechanism,
        creds: fast ? { username, fast } : creds,
        agent: userAgent(clientId),
        extras: [fast ? fastElement(fast.count) : null, ...extras],
        onSuccess,
      });
      const token = tokenOf(result.success, wantToken ? fastMech : mechanism.name);
      if (byToken) {
        if (token) { // §5: rotated; the count goes on (it only has to grow)
          this._creds.fast = { ...token, count: fast.count, clientId };
          this._saveFast();
        }
      } else {
        const keep = { username, remember: password !== undefined ? remember : !!creds.remember };
        if (token) {
          this._creds = { ...keep, fast: { ...token, count: 0, clientId } };
        } else if (result.keys && !fastMech) {
          this._creds = { ...keep, keys: result.keys }; // a server without FAST
        } else {
          // nothing to store: log in again (after a lost connection) from memory
          this._creds = result.keys ? { ...keep, keys: result.keys } : { username, password };
        }
        if (password !== undefined || token) {
          storeLogin({ username, domain: this.domain, remember: keep.remember,
            fast: this._creds.fast, keys: this._creds.fast || fastMech ? null : this._creds.keys });
        }
      }
      return result;
    };
    const result = byToken || wantToken ? await withTokenLock(run) : await run();
    this.mechanism = result.mechanism;
    if (session.resumed) {
      this._resumed(resumeJid, plan.fresh);
      return;
    }
    if (plan && !inlineResume) { // no <resume/> inline: the RFC 6120 way, before binding
      if (offersSm(result.features) && await this.sm.resume()) {
        this._resumed(resumeJid, plan.fresh);
        return;
      }
      this._giveUp();
    }
    await this._newSession({ features: result.features, ...session });
  }

  /** The FAST token to use: the stored one (another tab may have used or replaced it). */
  _storedFast() {
    const creds = this._creds;
    const stored = loadLogin(this.domain);
    if (stored && stored.fast && stored.username === creds.username
        && stored.fast.clientId === creds.fast.clientId) {
      creds.fast = stored.fast;
      creds.remember = stored.remember;
    }
    return creds.fast;
  }

  _saveFast() {
    const { username, remember, fast } = this._creds;
    updateLogin({ username, domain: this.domain, remember, fast });
  }

  /**
   * XEP-0484 §6: a last login with the token, <fast invalidate='true'/>, on a stream of its
   * own: the server revokes this client's tokens. Failures are ignored (logging out goes on).
   */
  async _invalidate(creds) {
    const conn = new Connection({ url: this.conn.url, domain: this.domain, timeout: Math.min(this.conn.timeout, 5000) });
    try {
      const auth = sasl2.authentication(await conn.open());
      if (!auth || fastMechanism(auth) !== creds.fast.mechanism) return;
      await withTokenLock(async () => {
        const fast = this._creds === creds ? this._storedFast() : creds.fast;
        fast.count = (fast.count | 0) + 1;
        if (this._creds === creds) this._saveFast();
        await sasl2.authenticate(conn, {
          mechanism: HT_MECHANISM,
          creds: { username: creds.username, fast },
          agent: userAgent(fast.clientId),
          extras: [fastElement(fast.count, true)],
        });
      });
    } catch { /* the server keeps the token until it expires */ } finally {
      await conn.close().catch(() => {});
      conn.abort();
    }
  }

  /** Whether this client may use Bind 2 (holds the account's lock in this browser). */
  async _claimBind2(clientId) {
    if (this._bind2) return true;
    const release = await claim(`xmpp.bind2 ${clientId} ${this.username}@${this.domain}`);
    if (!release) return false;
    if (!this._wantOnline) { // logged out meanwhile
      release();
      return false;
    }
    this._bind2 = release;
    return true;
  }

  _release() {
    if (this._bind2) this._bind2();
    this._bind2 = null;
  }
};
