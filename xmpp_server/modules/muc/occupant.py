"""Occupants of a room (XEP-0045 §5): a nick, a role, and one or more sessions of one user.

Several clients of one user may share a nick (XEP-0045 §7.2, "multi-session nick"): they are
one occupant with several ``Target``s; the others see the presence of the one that spoke last.

Nicks are prepared with the RFC 8266 Nickname profile: what is shown keeps its case
(NicknameCasePreserved); two nicks conflict when their case-mapped forms are equal, so
"Alice" cannot impersonate "alice".
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from lxml import etree
from precis_i18n import get_profile

from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc.fanout import Target

_SHOWN = get_profile("NicknameCasePreserved")
_KEY = get_profile("NicknameCaseMapped")
MAX_NICK = 1023  # RFC 7622 §3.4: a resourcepart is at most 1023 octets

AFFILIATIONS = ("owner", "admin", "member", "none", "outcast")
ROLES = ("moderator", "participant", "visitor", "none")
AFFILIATION_RANK = {"outcast": -1, "none": 0, "member": 1, "admin": 2, "owner": 3}
ROLE_RANK = {"none": 0, "visitor": 1, "participant": 2, "moderator": 3}


def prepare_nick(raw: str) -> tuple[str, str]:
    """(nick as shown, comparison key); jid-malformed if it is no acceptable nick."""
    try:
        shown = str(_SHOWN.enforce(raw))
        key = str(_KEY.enforce(raw))
    except UnicodeEncodeError:
        raise StanzaError("jid-malformed", "not an acceptable nickname") from None
    if len(shown.encode()) > MAX_NICK:
        raise StanzaError("jid-malformed", "the nickname is too long")
    return shown, key


def nick_key(nick: str) -> str | None:
    """The comparison key of a nick, or None if it is not one."""
    try:
        return str(_KEY.enforce(nick))
    except UnicodeEncodeError:
        return None


def occupant_id(secret: str, bare: str) -> str:
    """XEP-0421: stable per room and user, revealing nothing about the user."""
    digest = hmac.new(secret.encode(), bare.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


class Occupant:
    __slots__ = ("id", "jid", "key", "nick", "primary", "role", "targets")

    def __init__(self, nick: str, key: str, jid: JID, role: str, id_: str) -> None:
        self.nick = nick
        self.key = key
        self.jid = jid  # the user's real bare JID
        self.role = role
        self.id = id_
        self.targets: dict[JID, Target] = {}  # real full JID -> session
        self.primary: Target | None = None

    def add(self, target: Target) -> None:
        self.targets[target.jid] = target
        self.primary = target

    def remove(self, jid: JID) -> Target | None:
        target = self.targets.pop(jid, None)
        if target is not None and target is self.primary and self.targets:
            self.primary = next(reversed(self.targets.values()))
        return target

    @property
    def presence(self) -> etree._Element | None:
        return self.primary.presence if self.primary is not None else None

    def __repr__(self) -> str:
        return f"<Occupant {self.nick} {self.jid} {self.role}>"
