/**
 * JIDs (RFC 7622) as strings: `local@domain/resource`. No escaping (XEP-0106) and no
 * normalisation beyond lowercasing the local part and domain; the server does the rest.
 * @module xmpp/jid
 */

/**
 * The parts of a JID.
 * @param {string} jid
 * @returns {{local: string|null, domain: string, resource: string|null}}
 */
export function parse(jid) {
  const s = String(jid || '');
  const slash = s.indexOf('/');
  const head = slash < 0 ? s : s.slice(0, slash);
  const resource = slash < 0 ? null : s.slice(slash + 1);
  const at = head.indexOf('@');
  return {
    local: at < 0 ? null : head.slice(0, at).toLowerCase(),
    domain: (at < 0 ? head : head.slice(at + 1)).toLowerCase().replace(/\.$/, ''),
    resource,
  };
}

/** `local@domain` (or `domain`) of a JID. @param {string} jid */
export function bare(jid) {
  const { local, domain } = parse(jid);
  return local ? `${local}@${domain}` : domain;
}

/** The local part, or null. @param {string} jid */
export function local(jid) {
  return parse(jid).local;
}

/** The domain. @param {string} jid */
export function domain(jid) {
  return parse(jid).domain;
}

/** The resource, or null. @param {string} jid */
export function resource(jid) {
  return parse(jid).resource;
}

/** The JID with a resource. @param {string} bareJid @param {string} res */
export function full(bareJid, res) {
  return `${bare(bareJid)}/${res}`;
}

/**
 * A JID as typed by a user: "bob" becomes "bob@<domain>"; surrounding spaces are dropped.
 * @param {string} input
 * @param {string} defaultDomain
 */
export function complete(input, defaultDomain) {
  const s = String(input || '').trim();
  if (!s) return s;
  return s.includes('@') || s === defaultDomain ? bare(s) : bare(`${s}@${defaultDomain}`);
}

/** Whether two JIDs have the same bare JID. */
export function sameBare(a, b) {
  return !!a && !!b && bare(a) === bare(b);
}

/** Whether a string looks like a JID at all (a domain with a dot or localhost, no spaces). */
export function valid(jid) {
  const { local: l, domain: d } = parse(jid);
  return !!d && !/[\s"&'/:<>@]/.test(d) && (l === null || (l.length > 0 && !/[\s"&'/:<>@]/.test(l)));
}
