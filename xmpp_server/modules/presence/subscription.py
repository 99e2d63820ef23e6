"""RFC 6121 §3: presence subscriptions — requests, approval, pre-approval, cancelling.

The state tables live in ``states.py``; here they meet storage and the network. Each change
is read, decided and written under the roster lock of the account it belongs to, with the
roster push sent before the lock is released; stanzas are routed only after it is released,
because a local contact's server (this one) answers within the same call.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lxml import etree

from storage import RosterItem, UnknownUser
from xmpp_server.modules.presence import states
from xmpp_server.modules.presence.broadcast import Broadcast, available_sessions
from xmpp_server.stanza import Stanza, element

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.modules.roster import Roster
    from xmpp_server.stream.session import Session


class Subscriptions:
    def __init__(self, host: Host, roster: Roster, broadcast: Broadcast) -> None:
        self.host = host
        self.roster = roster
        self.broadcast = broadcast

    async def _load(self, username: str, jid: str) -> tuple[RosterItem | None, states.State]:
        repo = self.host.storage.roster
        item = await repo.get_item(username, jid)
        pending = any(other == jid for other, _ in await repo.list_pending(username))
        if item is None:
            return None, states.State(pending_in=pending)
        return item, states.State(item.subscription, item.ask, pending, item.approved)

    async def _save(self, username: str, jid: str, item: RosterItem | None,
                    old: states.State, new: states.State) -> None:
        """Write what changed; a changed item is pushed to the interested resources (§2.1.6)."""
        repo = self.host.storage.roster
        if (old.subscription, old.ask, old.approved) != (new.subscription, new.ask, new.approved):
            updated = replace(item or RosterItem(jid), subscription=new.subscription,
                              ask=new.ask, approved=new.approved)
            version = await repo.put(username, updated)
            self.roster.push(username, version, updated)
        if old.pending_in and not new.pending_in:
            await repo.remove_pending(username, jid)

    # -- the user sends (Appendix A.2) --------------------------------------------------------

    async def outbound(self, stanza: Stanza) -> None:
        frm, to, type_ = stanza.frm, stanza.to, stanza.type
        assert frm is not None and frm.local is not None and to is not None and type_
        username = frm.local
        # §3.1.2 (and §3.2.1, §3.3.1): the server stamps the user's bare JID, and the
        # subscription is always to the contact's bare JID.
        user, contact = frm.bare, to.bare
        stanza.frm, stanza.to = user, contact
        stanza.el.set("from", str(user))
        stanza.el.set("to", str(contact))
        if contact == user:
            return  # one's own presence needs no subscription
        jid = str(contact)
        async with self.roster.lock(username):
            item, old = await self._load(username, jid)
            outcome = states.outbound(old, type_)
            await self._save(username, jid, item, old, outcome.state)
        if not outcome.forward:
            return
        await self.host.router.route(stanza)
        if type_ == "subscribed":
            # §3.1.5: the new subscriber gets the user's current presence at once.
            await self.broadcast.send_current(username, jid)
        elif type_ == "unsubscribed" and old.frm:
            # §3.2.2: and a former subscriber learns that the user is gone for it.
            await self.broadcast.send_unavailable(username, jid)

    # -- the user receives (Appendix A.3) -----------------------------------------------------

    async def inbound(self, stanza: Stanza) -> None:
        frm, to, type_ = stanza.frm, stanza.to, stanza.type
        assert to is not None and to.local is not None and type_
        if frm is None:
            return
        username = to.local
        if not await self.host.accounts.exists(username):
            return  # §8.5.1: subscription presence for no account is silently ignored
        contact = frm.bare
        jid = str(contact)
        stanza.el.set("from", jid)
        repo = self.host.storage.roster
        try:
            async with self.roster.lock(username):
                item, old = await self._load(username, jid)
                outcome = states.inbound(old, type_)
                await self._save(username, jid, item, old, outcome.state)
                if type_ == "subscribe" and not outcome.auto_reply:
                    # §3.1.3: kept until answered, and delivered again at each login
                    await repo.add_pending(username, jid, etree.tostring(stanza.el).decode())
        except UnknownUser:
            return  # removed meanwhile
        if outcome.forward:
            for session in self._recipients(username, type_):
                session.send(stanza.el)
        if outcome.auto_reply:
            # §3.1.3, §3.4: the contact's server answers for a user who already approved.
            user = f"{username}@{self.host.domain}"
            await self.host.router.send(element("presence", type="subscribed", from_=user,
                                                to=jid))
            await self.broadcast.send_current(username, jid)
        elif type_ == "unsubscribe" and old.frm:
            # §3.3.3: the former subscriber gets unavailable presence from each resource.
            await self.broadcast.send_unavailable(username, jid)

    def _recipients(self, username: str, type_: str) -> list[Session]:
        """§3.1.3: requests go to available resources; the other three to interested ones
        (§3.1.6, §3.2.3, §3.3.3), and to available ones too, so that no client misses them."""
        if type_ == "subscribe":
            return available_sessions(self.host, username)
        return [s for s in self.host.sessions.of_user(username)
                if (s.interested or s.available) and not s.closed]
