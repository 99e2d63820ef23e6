"""XEP-0357 §7: what deserves a push, and the publish that carries it to an app server.

Important (Prosody mod_cloud_notify's ``is_important``, without group chat): a message of type
chat or normal with a non-empty <body/>, or one that is end-to-end encrypted (OMEMO, legacy
OMEMO, XEP-0027, XEP-0373: the server cannot see whether it has text) or invites to a call
(XEP-0353 <propose/>). A received carbon counts as the message it carries; a sent carbon (the
user wrote it) never does. Headlines, errors and group chat are not pushed.

The publish (§7) is an IQ-set from the server's domain to the service: an item whose
<notification/> holds the ``urn:xmpp:push:summary`` form (message-count always; the sender
and the body only as ``[push]`` allows, §10 "servers SHOULD allow users to limit the
information sent"), and the client's publish-options form as it was given when enabling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lxml import etree

from storage.push import PushRegistration
from xmpp_server import namespaces as ns
from xmpp_server.config import PushConfig
from xmpp_server.stanza import element, sub

log = logging.getLogger(__name__)

_MESSAGE = "{" + ns.CLIENT + "}message"
_BODY = "{" + ns.CLIENT + "}body"
_SENT = "{" + ns.CARBONS + "}sent"
_RECEIVED = "{" + ns.CARBONS + "}received"
_FORWARDED = "{" + ns.FORWARD + "}forwarded"
_X = "{" + ns.DATA_FORMS + "}x"
_MATTERS = frozenset((
    "{" + ns.OMEMO + "}encrypted",
    "{" + ns.OMEMO_LEGACY + "}encrypted",
    "{" + ns.PGP_ENCRYPTED + "}x",
    "{" + ns.OPENPGP + "}openpgp",
    "{" + ns.JINGLE_MESSAGE + "}propose",
))
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def important(el: etree._Element) -> etree._Element | None:
    """The message that deserves a push (the copied one, for a carbon), else None."""
    if el.tag != _MESSAGE:
        return None
    if el.find(_SENT) is not None:
        return None  # XEP-0280 §8: the user's own words, from another of their clients
    inner = el.find(f"{_RECEIVED}/{_FORWARDED}/{_MESSAGE}")
    if inner is not None:
        el = inner
    if el.get("type") in ("headline", "groupchat", "error"):
        return None
    for child in el:
        if child.tag in _MATTERS:
            return el
    return el if el.findtext(_BODY) else None


@dataclass
class Summary:
    """XEP-0357 §11.3 ``urn:xmpp:push:summary`` of what the user missed since last online."""

    count: int = 0
    sender: str | None = None
    body: str | None = None

    def add(self, sender: str | None, body: str | None) -> None:
        self.count += 1
        self.sender = sender
        self.body = body


def publish_iq(domain: str, registration: PushRegistration, summary: Summary,
               config: PushConfig) -> etree._Element:
    """The §7 publish of ``summary`` to one registration (the router sets the id)."""
    iq = element("iq", type="set", to=registration.jid, from_=domain)
    pubsub = sub(iq, "{" + ns.PUBSUB + "}pubsub")
    item = sub(sub(pubsub, "publish", node=registration.node), "item")
    form = sub(sub(item, "{" + ns.PUSH + "}notification"), _X, type="submit")
    _field(form, "FORM_TYPE", ns.PUSH_SUMMARY, "hidden")
    _field(form, "message-count", str(summary.count))
    if config.include_sender and summary.sender:
        _field(form, "last-message-sender", summary.sender)
    body = summary.body if config.include_body else None
    if not body and config.important_body:
        body = config.important_body  # Prosody's "push_notification_important_body"
    if body:
        _field(form, "last-message-body", body)
    if registration.options is not None:
        try:
            options = etree.fromstring(registration.options, _PARSER)
        except etree.XMLSyntaxError:  # our own serialisation: should not happen
            log.error("unreadable publish options of push service %s", registration.jid)
        else:
            sub(pubsub, "publish-options").append(options)
    return iq


def _field(form: etree._Element, var: str, value: str, type_: str | None = None) -> None:
    sub(sub(form, "field", var=var, type=type_), "value", value)
