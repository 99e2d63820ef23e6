"""XEP-0203: Delayed Delivery — a client's <delay/> may speak for the client only.

A <delay/> says who held a stanza back and since when; receivers believe it when it is
``from`` a server or a room (offline storage, MUC history). A client may mark its own
stanza as delayed (a queue of its own, XEP-0203 §3: ``from`` absent or its own JID), but a
<delay/> that claims our domain or any other entity is a forgery and is removed before the
stanza is routed. So is the legacy XEP-0091 <x xmlns='jabber:x:delay'/> making such a claim.
Only the stanza's own children count: a <delay/> inside a forwarded message (XEP-0297) is
part of what is forwarded.
"""

from __future__ import annotations

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError
from xmpp_server.jid import JID
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza

_DELAYS = ("{" + ns.DELAY + "}delay", "{jabber:x:delay}x")


class DelayGuard(Module):
    name = "delay"
    xeps = (203,)

    def setup(self) -> None:
        # Before every other outbound hook (blocking filters at 100), so that archives,
        # carbons and rooms all see the stanza as it will be delivered.
        for kind in ("message", "presence"):
            self.on("pre-" + kind, strip_forged_delays, priority=1000)


def strip_forged_delays(stanza: Stanza) -> None:
    """Remove the <delay/> children a local client may not claim."""
    sender = stanza.frm
    if stanza.origin is None or sender is None:
        return
    for child in list(stanza.el):
        if child.tag in _DELAYS and not _claimable(child.get("from"), sender):
            stanza.el.remove(child)


def _claimable(frm: str | None, sender: JID) -> bool:
    if frm is None:
        return True
    try:
        claimed = JID.parse(frm)
    except JIDError:
        return False
    return claimed == sender or claimed == sender.bare
