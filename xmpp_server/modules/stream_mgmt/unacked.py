"""XEP-0198 §4: what becomes of the stanzas a session never acknowledged when it ends.

"A server SHOULD treat unacknowledged stanzas in the same way that it would treat a stanza
sent to an unavailable resource" (XEP-0198 §4), that is RFC 6121 §8.5.3.2:

=========================  ==================================================================
stanza                     what happens
=========================  ==================================================================
message normal/chat with   routed again to the bare JID (§8.5.3.2.1), so another resource
a <body/>                  gets it or offline storage keeps it; a <delay/> keeps the time it
                           was first sent (XEP-0203); the ended session is already unbound
iq get/set                 service-unavailable to the sender (§8.5.3.2.2)
anything else              dropped (§8.5.3.2.3: presence; results and errors; chat states)
=========================  ==================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.stanza import Stanza, error_reply

if TYPE_CHECKING:
    from xmpp_server.host import Host

log = logging.getLogger(__name__)

_MESSAGE = "{" + ns.CLIENT + "}message"
_IQ = "{" + ns.CLIENT + "}iq"
_BODY = "{" + ns.CLIENT + "}body"
_DELAY = "{" + ns.DELAY + "}delay"
# Our own serialisation, parsed back safely all the same.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def xep0082(stamp: float) -> str:
    """A Unix time as a XEP-0082 DateTime (UTC, milliseconds)."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def hand_on(host: Host, jid: JID, queue: Iterable[tuple[float, bytes]]) -> None:
    """Reroute, bounce or drop each unacknowledged stanza of the ended session ``jid``."""
    for stamp, data in queue:
        try:
            el = etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError:
            log.error("unreadable unacknowledged stanza of %s", jid)
            continue
        type_ = el.get("type")
        try:
            frm = JID.parse(el.get("from") or host.domain)
        except JIDError:
            continue  # nobody to hand it back to
        if el.tag == _MESSAGE and type_ in (None, "normal", "chat") and el.find(_BODY) is not None:
            await _reroute(host, jid, el, frm, stamp)
        elif el.tag == _IQ and type_ in ("get", "set"):
            reply = error_reply(Stanza(el, "iq", frm, jid), StanzaError("service-unavailable"))
            await host.router.send(reply)


async def _reroute(host: Host, jid: JID, el: etree._Element, frm: JID, stamp: float) -> None:
    bare = jid.bare
    el.set("to", str(bare))
    if el.find(_DELAY) is None:
        delay = etree.SubElement(el, _DELAY, nsmap={None: ns.DELAY})
        delay.set("from", host.domain)
        delay.set("stamp", xep0082(stamp))
    # The router answers the sender if it cannot be delivered or stored either.
    await host.router.route(Stanza(el, "message", frm, bare))
