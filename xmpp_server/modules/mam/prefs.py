"""XEP-0441: Message Archive Management Preferences — the <prefs/> element and its rules."""

from __future__ import annotations

from lxml import etree

from storage.archive import POLICIES, ArchivePrefs
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.stanza import element, sub

PREFS = "{" + ns.MAM + "}prefs"
_ALWAYS = "{" + ns.MAM + "}always"
_NEVER = "{" + ns.MAM + "}never"
_JID = "{" + ns.MAM + "}jid"


def parse_prefs(el: etree._Element, current: ArchivePrefs) -> ArchivePrefs:
    """The preferences a <prefs/> set asks for; a missing default keeps the current one."""
    policy = el.get("default", current.policy)
    if policy not in POLICIES:
        raise StanzaError("bad-request", f"default must be one of {', '.join(POLICIES)}")
    return ArchivePrefs(policy, _jids(el.find(_ALWAYS)), _jids(el.find(_NEVER)))


def _jids(parent: etree._Element | None) -> list[str]:
    # §2.1.2/§2.1.3: a missing list is an empty one.
    out: list[str] = []
    if parent is None:
        return out
    for item in parent.iterchildren(_JID):
        try:
            jid = str(JID.parse((item.text or "").strip()))
        except JIDError as exc:
            raise StanzaError("jid-malformed", f"not a JID: {item.text!r}") from exc
        if jid not in out:
            out.append(jid)
    return out


def prefs_element(prefs: ArchivePrefs) -> etree._Element:
    """§2.1: <always/> and <never/> are present even when empty."""
    el = element(PREFS, default=prefs.policy)
    for tag, jids in (("always", prefs.always), ("never", prefs.never)):
        parent = sub(el, tag)
        for jid in jids:
            sub(parent, "jid", jid)
    return el


def decide(prefs: ArchivePrefs, with_bare: str, with_full: str) -> bool | None:
    """Whether to archive a message with this party: True, False, or None for "if in roster".

    §2.3: a listed JID with a resource is compared with the full JID, a bare one with the bare
    JID. A JID in both lists is not archived: the privacy-preserving reading.
    """
    if _listed(prefs.never, with_bare, with_full):
        return False
    if _listed(prefs.always, with_bare, with_full):
        return True
    if prefs.policy == "always":
        return True
    if prefs.policy == "never":
        return False
    return None


def _listed(jids: list[str], with_bare: str, with_full: str) -> bool:
    # A resource may contain '/', a localpart or domainpart may not (RFC 7622 §3).
    return any(jid == (with_full if "/" in jid else with_bare) for jid in jids)
