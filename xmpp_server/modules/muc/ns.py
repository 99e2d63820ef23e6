"""The XML namespaces and qualified names of multi-user chat, in one place for the package.

Shared namespaces (client, delay, stanza ids, data forms) come from ``xmpp_server.namespaces``.
"""

from __future__ import annotations

MUC = "http://jabber.org/protocol/muc"
USER = MUC + "#user"
ADMIN = MUC + "#admin"
OWNER = MUC + "#owner"
UNIQUE = MUC + "#unique"
REQUEST = MUC + "#request"
ROOMCONFIG = MUC + "#roomconfig"
ROOMINFO = MUC + "#roominfo"
REGISTER_FORM = MUC + "#register"
STABLE_ID = MUC + "#stable_id"
SELF_PING = MUC + "#self-ping-optimization"
CONFERENCE = "jabber:x:conference"  # XEP-0249 direct invitations
OCCUPANT_ID = "urn:xmpp:occupant-id:0"  # XEP-0421
MAM = "urn:xmpp:mam:2"
MAM_EXTENDED = "urn:xmpp:mam:2#extended"
RSM = "http://jabber.org/protocol/rsm"
FORWARD = "urn:xmpp:forward:0"
MODERATE = "urn:xmpp:message-moderate:1"  # XEP-0425
RETRACT = "urn:xmpp:message-retract:1"  # XEP-0424
# XEP-0425 v0.2 (what older clients send): the request fastened (XEP-0422) to the message
MODERATE_0 = "urn:xmpp:message-moderate:0"
RETRACT_0 = "urn:xmpp:message-retract:0"
FASTEN = "urn:xmpp:fasten:0"
REGISTER = "jabber:iq:register"


def q(ns: str, name: str) -> str:
    """Clark notation: ``{ns}name``."""
    return "{" + ns + "}" + name


X_MUC = q(MUC, "x")
X_USER = q(USER, "x")
X_DATA = q("jabber:x:data", "x")
OCCUPANT_ID_EL = q(OCCUPANT_ID, "occupant-id")
