"""The registry of bound client sessions: username -> resource -> session.

It holds this node's sessions; in a cluster it also lists, through ``remote`` (the session
directory's replica), the resources bound on other nodes, so every feature chooses among all
of a user's resources wherever they are. ``watchers`` are told of each binding, change of
routing state (``changed``: presence, priority, carbons...) and unbinding of a local session.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session


class RemoteView(Protocol):
    """Resources bound on other nodes (``cluster.directory.Directory``)."""

    def of_user(self, username: str) -> list[Any]: ...

    def get(self, username: str, resource: str) -> Any: ...


# ``Session.data`` flags that other nodes of a cluster see (``cluster.directory.entry_of``).
CARBONS = "carbons"  # the session enabled XEP-0280 carbons

# Watcher(jid, session, bound): a local session was bound or changed (True) or unbound (False).
Watcher = Callable[[JID, "Session", bool], None]


class SessionRegistry:
    __slots__ = ("_by_user", "domain", "max_resources", "remote", "watchers")

    def __init__(self, domain: str, max_resources: int = 10) -> None:
        self.domain = domain
        self.max_resources = max_resources
        self._by_user: dict[str, dict[str, Session]] = {}
        self.remote: RemoteView | None = None
        self.watchers: list[Watcher] = []

    def bind(self, session: Session, username: str, resource: str | None) -> JID:
        """RFC 6120 §7.6-§7.7: bind a resource; a missing or taken one is generated.

        A session kept for resumption (XEP-0198, ``detached``) never stands in the way of a
        new one: binding its resource replaces it, and the oldest one makes room when the
        account has ``max_resources`` bound. Ending it hands its unacknowledged stanzas on.
        """
        current = self._by_user.get(username, {})
        remote = self.remote.of_user(username) if self.remote is not None else []
        held = current.get(resource) if resource else None
        if held is not None and held.detached and not held.closed:
            held.close()  # unbinds it (at once, unless its last input is still being routed)
        elif len(current) + len(remote) >= self.max_resources:
            oldest = next((s for s in current.values() if s.detached and not s.closed), None)
            if oldest is not None:
                oldest.close()
        resources = self._by_user.setdefault(username, {})
        if len(resources) + len(remote) >= self.max_resources:
            if not resources:
                del self._by_user[username]
            raise StanzaError("resource-constraint", "too many resources bound for this account")
        if not resource or resource in resources or any(
                r.jid.resource == resource for r in remote):
            # RFC 6120 §7.7.2.2: on conflict the server may assign another resource; a
            # suffix keeps the one the client asked for recognisable.
            base = resource or ""
            resource = f"{base}.{secrets.token_hex(4)}" if base else secrets.token_hex(8)
        jid = JID(username, self.domain, resource)
        resources[resource] = session
        for watcher in self.watchers:
            watcher(jid, session, True)
        return jid

    def changed(self, session: Session) -> None:
        """A local session's routing state changed (availability, priority, carbons...)."""
        if self.watchers and session.jid is not None and not session.closed:
            for watcher in self.watchers:
                watcher(session.jid, session, True)

    def unbind(self, jid: JID) -> None:
        if jid.local is None or jid.resource is None:
            return
        resources = self._by_user.get(jid.local)
        if resources is None:
            return
        session = resources.pop(jid.resource, None)
        if not resources:
            del self._by_user[jid.local]
        if session is not None:
            for watcher in self.watchers:
                watcher(jid, session, False)

    def get(self, jid: JID) -> Session | None:
        """The session bound to a full JID, on this node or (in a cluster) another."""
        if jid.local is None or jid.resource is None:
            return None
        resources = self._by_user.get(jid.local)
        session = resources.get(jid.resource) if resources else None
        if session is None and self.remote is not None:
            return self.remote.get(jid.local, jid.resource)
        return session

    def local(self, jid: JID) -> Session | None:
        """The session bound to a full JID on this node."""
        if jid.local is None or jid.resource is None:
            return None
        resources = self._by_user.get(jid.local)
        return resources.get(jid.resource) if resources else None

    def of_user(self, username: str) -> list[Session]:
        """Every bound resource of the user: this node's, then other nodes' (a cluster)."""
        resources = self._by_user.get(username)
        sessions = list(resources.values()) if resources else []
        if self.remote is not None:
            sessions.extend(self.remote.of_user(username))
        return sessions

    def local_of_user(self, username: str) -> list[Session]:
        resources = self._by_user.get(username)
        return list(resources.values()) if resources else []

    def is_online(self, username: str) -> bool:
        return username in self._by_user or (
            self.remote is not None and bool(self.remote.of_user(username)))

    def __iter__(self) -> Iterator[Session]:
        for resources in list(self._by_user.values()):
            yield from list(resources.values())

    def __len__(self) -> int:
        return sum(len(r) for r in self._by_user.values())
