"""XEP-0092: Software Version of the server."""

from __future__ import annotations

import platform

from xmpp_server import namespaces as ns
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, element, iq_result, sub

NAME = "xmppd"
VERSION = "0.1.0"


class Version(Module):
    name = "version"
    xeps = (92,)
    features = (ns.VERSION,)

    def setup(self) -> None:
        self.on_iq("get", "host", "{" + ns.VERSION + "}query", self.version)

    async def version(self, stanza: Stanza) -> bool:
        query = element("{" + ns.VERSION + "}query")
        sub(query, "name", NAME)
        sub(query, "version", VERSION)
        sub(query, "os", platform.system())
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True
