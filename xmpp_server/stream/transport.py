"""What a client session (RFC 6120) needs from its connection, and the stand-in it keeps while
detached (XEP-0198 §5): the transport contract of ``Session``.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session


class Transport(Protocol):
    """What a Session needs from its connection.

    A transport names the session it feeds ``session`` (C2SConnection does): stream
    resumption (XEP-0198) re-points it at the resumed session.
    """

    framed: bool  # RFC 7395 framing: <open/>/<close/> instead of <stream:stream>

    @property
    def secure(self) -> bool: ...
    @property
    def can_starttls(self) -> bool: ...
    @property
    def peer_ip(self) -> str: ...
    @property
    def ssl_object(self) -> ssl.SSLObject | None: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    async def starttls(self) -> None: ...


class Detached:
    """The transport of a detached session: writes go nowhere; closing ends the session."""

    can_starttls = False
    ssl_object = None

    def __init__(self, session: Session, old: Transport) -> None:
        self.session = session
        self.framed = old.framed
        self.secure = old.secure
        self.peer_ip = old.peer_ip

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.session.connection_lost()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    async def starttls(self) -> None:
        pass


def repoint(transport: Transport, session: Session | None) -> None:
    """Make ``transport`` feed ``session`` (see ``Transport``)."""
    if not hasattr(transport, "session"):
        raise TypeError(f"{type(transport).__name__} has no 'session' to re-point")
    transport.session = session
