"""The registry of bound client sessions on this node: username -> resource -> session."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session


class SessionRegistry:
    __slots__ = ("_by_user", "domain", "max_resources")

    def __init__(self, domain: str, max_resources: int = 10) -> None:
        self.domain = domain
        self.max_resources = max_resources
        self._by_user: dict[str, dict[str, Session]] = {}

    def bind(self, session: Session, username: str, resource: str | None) -> JID:
        """RFC 6120 §7.6-§7.7: bind a resource; a missing or taken one is generated.

        A session kept for resumption (XEP-0198, ``detached``) never stands in the way of a
        new one: binding its resource replaces it, and the oldest one makes room when the
        account has ``max_resources`` bound. Ending it hands its unacknowledged stanzas on.
        """
        current = self._by_user.get(username, {})
        held = current.get(resource) if resource else None
        if held is not None and held.detached and not held.closed:
            held.close()  # unbinds it (at once, unless its last input is still being routed)
        elif len(current) >= self.max_resources:
            oldest = next((s for s in current.values() if s.detached and not s.closed), None)
            if oldest is not None:
                oldest.close()
        resources = self._by_user.setdefault(username, {})
        if len(resources) >= self.max_resources:
            if not resources:
                del self._by_user[username]
            raise StanzaError("resource-constraint", "too many resources bound for this account")
        if not resource or resource in resources:
            # RFC 6120 §7.7.2.2: on conflict the server may assign another resource; a
            # suffix keeps the one the client asked for recognisable.
            base = resource or ""
            resource = f"{base}.{secrets.token_hex(4)}" if base else secrets.token_hex(8)
        jid = JID(username, self.domain, resource)
        resources[resource] = session
        return jid

    def unbind(self, jid: JID) -> None:
        if jid.local is None or jid.resource is None:
            return
        resources = self._by_user.get(jid.local)
        if resources is None:
            return
        resources.pop(jid.resource, None)
        if not resources:
            del self._by_user[jid.local]

    def get(self, jid: JID) -> Session | None:
        if jid.local is None or jid.resource is None:
            return None
        resources = self._by_user.get(jid.local)
        return resources.get(jid.resource) if resources else None

    def of_user(self, username: str) -> list[Session]:
        resources = self._by_user.get(username)
        return list(resources.values()) if resources else []

    def is_online(self, username: str) -> bool:
        return username in self._by_user

    def __iter__(self) -> Iterator[Session]:
        for resources in list(self._by_user.values()):
            yield from list(resources.values())

    def __len__(self) -> int:
        return sum(len(r) for r in self._by_user.values())
