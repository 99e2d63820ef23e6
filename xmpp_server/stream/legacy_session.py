"""RFC 3921 §3 session establishment, kept for the clients that still ask for it.

The stream features offer ``<session><optional/></session>`` (RFC 3921bis), so a client may
skip it; Strophe.js (and with it Converse.js and JSXC) sends it right after bind, with no
``to`` or to the domain. Before bind the negotiation answers it; after bind it comes through
the routing table like any IQ and is answered here: a no-op result, for a local client only.
"""

from __future__ import annotations

from xmpp_server import namespaces as ns
from xmpp_server.events import Events
from xmpp_server.stanza import Stanza, iq_result

SESSION = "{" + ns.SESSION + "}session"


def install(events: Events) -> None:
    """Answer the session IQ addressed to the server (or, by RFC 6120 §10.3.3, to no one)."""
    events.on(f"iq-set/host/{SESSION}", _established)


async def _established(stanza: Stanza) -> bool:
    origin = stanza.origin
    if origin is None:
        return False  # another server's entity has no session here: service-unavailable
    origin.send(iq_result(stanza))
    return True
