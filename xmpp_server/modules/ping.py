"""XEP-0199: XMPP Ping — the server answers pings addressed to it."""

from __future__ import annotations

from xmpp_server import namespaces as ns
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, iq_result


class Ping(Module):
    name = "ping"
    xeps = (199,)
    features = (ns.PING,)

    def setup(self) -> None:
        self.on_iq("get", "host", "{" + ns.PING + "}ping", self.pong)

    async def pong(self, stanza: Stanza) -> bool:
        await self.host.router.reply(stanza, iq_result(stanza))
        return True
