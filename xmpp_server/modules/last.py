"""XEP-0012: Last Activity — the server's uptime and an account's last logout.

Queries to a full JID are the client's to answer (the router delivers them). For a bare JID
the server answers on the user's behalf (XEP-0012 §4): 0 while the user has an available
resource, else the seconds since their last session ended, with the status of their last
unavailable presence. Logouts are kept in storage, so they outlive a restart.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.modules.disco import may_see_account
from xmpp_server.retry import retried
from xmpp_server.stanza import Stanza, element, iq_result

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

QUERY = "{" + ns.LAST + "}query"
_STATUS = "{" + ns.CLIENT + "}status"


class LastActivity(Module):
    name = "last"
    xeps = (12,)
    features = (ns.LAST,)

    def setup(self) -> None:
        self.started = time.monotonic()
        self.on_iq("get", "host", QUERY, self.uptime)
        self.on_iq("get", "bare", QUERY, self.last_logout)
        # Before the presence feature handles it, only to remember the status text.
        self.on("pre-presence", self._presence, priority=100)
        self.on("session-ended", self._session_ended)

    async def uptime(self, stanza: Stanza) -> bool:
        # XEP-0012 §5: for a server, the time since it started.
        seconds = int(time.monotonic() - self.started)
        await self._reply(stanza, seconds, None)
        return True

    async def last_logout(self, stanza: Stanza) -> bool:
        assert stanza.frm is not None
        target = stanza.to or stanza.frm.bare
        username = target.local
        assert username is not None
        host = self.host
        if not await host.accounts.exists(username):
            raise StanzaError("service-unavailable")  # RFC 6121 §8.5.1: no such user
        if not await may_see_account(host, username, stanza.frm):
            # XEP-0012 §4: not subscribed to the user's presence.
            raise StanzaError("forbidden")
        if any(session.available for session in host.sessions.of_user(username)):
            await self._reply(stanza, 0, None)  # XEP-0012 §4: online now
            return True
        last = await host.storage.users.get_last_logout(username)
        if last is None:
            raise StanzaError("item-not-found", "no logout recorded for this account")
        when, status = last
        seconds = max(0, int((datetime.now(UTC) - when).total_seconds()))
        await self._reply(stanza, seconds, status)
        return True

    async def _reply(self, stanza: Stanza, seconds: int, status: str | None) -> None:
        query = element(QUERY, seconds=seconds)
        if status:
            query.text = status
        await self.host.router.reply(stanza, iq_result(stanza, query))

    def _presence(self, stanza: Stanza) -> None:
        session = stanza.origin
        if session is None or stanza.to is not None:
            return
        if stanza.type == "unavailable":
            session.data[self.name] = stanza.el.findtext(_STATUS)
        elif stanza.type is None:
            session.data.pop(self.name, None)  # available again: an older status is stale

    async def _session_ended(self, session: Session) -> None:
        username = session.username
        if username is None or self.host.sessions.is_online(username):
            return  # another resource is still connected: not a logout of the account
        status = session.data.get(self.name)
        when = datetime.now(UTC)
        await retried(lambda: self.host.storage.users.set_last_logout(
            username, when, status if isinstance(status, str) else None
        ), f"recording the logout of {username}")
