"""XEP-0202: Entity Time of the server (UTC, XEP-0082 format)."""

from __future__ import annotations

from datetime import UTC, datetime

from xmpp_server import namespaces as ns
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, element, iq_result, sub


class Time(Module):
    name = "time"
    xeps = (202,)
    features = (ns.TIME,)

    def setup(self) -> None:
        self.on_iq("get", "host", "{" + ns.TIME + "}time", self.time)

    async def time(self, stanza: Stanza) -> bool:
        now = datetime.now(UTC)
        reply = element("{" + ns.TIME + "}time")
        sub(reply, "tzo", "+00:00")
        sub(reply, "utc", now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z")
        await self.host.router.reply(stanza, iq_result(stanza, reply))
        return True
