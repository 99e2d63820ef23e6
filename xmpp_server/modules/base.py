"""The base of every feature module.

A module names its feature and specs, declares its disco features and dependencies, and
registers every handler in ``setup()`` through ``on``/``on_iq``; ``teardown()`` removes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from xmpp_server.errors import StanzaError
from xmpp_server.events import Handler

if TYPE_CHECKING:
    from xmpp_server.host import FeatureProvider, Host
    from xmpp_server.stanza import Stanza
    from xmpp_server.stream.session import Session


class Module:
    name: ClassVar[str] = ""
    xeps: ClassVar[tuple[int, ...]] = ()
    features: ClassVar[tuple[str, ...]] = ()  # disco#info features of the server
    depends: ClassVar[tuple[str, ...]] = ()

    def __init__(self, host: Host) -> None:
        self.host = host
        self._hooks: list[tuple[str, Handler]] = []
        self._offers: list[FeatureProvider] = []

    def setup(self) -> None:
        """Register handlers. Called once, in dependency order."""

    async def start(self) -> None:
        """Start background work, after every module is set up."""

    async def stop(self) -> None:
        """Stop background work (before teardown)."""

    def teardown(self) -> None:
        for event, handler in self._hooks:
            self.host.events.off(event, handler)
        self._hooks.clear()
        for provider in self._offers:
            if provider in self.host.stream_features:
                self.host.stream_features.remove(provider)
        self._offers.clear()

    def on(self, event: str, handler: Handler, priority: int = 0) -> None:
        self.host.events.on(event, handler, priority)
        self._hooks.append((event, handler))

    def offer(self, provider: FeatureProvider) -> None:
        """Add to the stream features (RFC 6120 §4.3.2) that ``provider`` writes for a session;
        ``teardown`` takes it away."""
        self.host.stream_features.append(provider)
        self._offers.append(provider)

    def on_iq(self, type_: str, target: str, qname: str, handler: Handler,
              priority: int = 0) -> None:
        """``target`` is ``host`` (to the server) or ``bare`` (to an account, or no ``to``)."""
        self.on(f"iq-{type_}/{target}/{qname}", handler, priority)


def own_session(stanza: Stanza, elsewhere: str) -> tuple[str, Session]:
    """The username and session of a client setting something for itself (carbons, push):
    only a bound session of the account, addressing its own account or no one; ``elsewhere``
    is the refusal's text for another 'to'."""
    frm, origin = stanza.frm, stanza.origin
    if origin is None or frm is None or frm.local is None or frm != origin.jid:
        raise StanzaError("not-allowed", "only a client of this account can do that")
    if stanza.to is not None and stanza.to != frm.bare:
        raise StanzaError("not-allowed", elsewhere)
    return frm.local, origin
