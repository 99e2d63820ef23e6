"""The services of the one XMPP domain this server hosts, handed to sessions and features.

Built by ``server.py`` (the wiring root); nothing here starts or stops listeners.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from lxml import etree

from storage import Storage
from xmpp_server.accounts import Accounts
from xmpp_server.auth_throttle import AuthThrottle
from xmpp_server.config import Config
from xmpp_server.events import Events
from xmpp_server.jid import JID
from xmpp_server.routing.router import Router
from xmpp_server.routing.sessions import SessionRegistry
from xmpp_server.stream import legacy_session
from xmpp_server.stream.peers import ConnectionsPerAddress

if TYPE_CHECKING:
    from xmpp_server.modules.base import Module
    from xmpp_server.stream.fast_key import FastKey
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

FeatureProvider = Callable[["Session", etree._Element], None]
Refusal = Callable[[str, JID], bool]  # (username, sender) -> whether it is refused


class Backlog(Protocol):
    def over(self) -> bool:
        """Whether producers should wait before adding more."""

    async def relieve(self) -> None:
        """Return once there is room again."""


class Host:
    def __init__(self, config: Config, storage: Storage, auth_secret: bytes | None = None) -> None:
        self.config = config
        self.domain = config.server.domain
        self.storage = storage
        self.events = Events()
        self.sessions = SessionRegistry(self.domain, config.limits.max_resources_per_user)
        self.router = Router(self.domain, self.events, self.sessions)
        legacy_session.install(self.events)
        # auth_secret: of ``accounts.load_secret``, for the made-up salts of unknown accounts.
        self.accounts = Accounts(storage, config.auth.scram_iterations, secret=auth_secret)
        self.auth_throttle = AuthThrottle(config.auth)  # RFC 6120 §13.3 "brute force"
        self.peers = ConnectionsPerAddress(config.c2s.max_connections_per_ip)
        self.ssl_context: ssl.SSLContext | None = None
        self.tls_cert_der: bytes | None = None
        self.fast_key: FastKey | None = None  # XEP-0484 sealing key (``stream/fast_key.py``)
        self.stream_features: list[FeatureProvider] = []
        # Checks for stanzas written straight to sessions, past the router (room fan-out):
        # each says whether a user refuses stanzas from a sender (XEP-0191). A feature adds
        # one only while some online user has something to refuse.
        self.refusals: list[Refusal] = []
        self.modules: dict[str, Module] = {}
        # This process's run: random per start, so nothing a dead run left behind (rows it
        # held in the delivery journal) is taken for this one's.
        self.incarnation = secrets.token_hex(8)
        # The incarnations of the processes serving the domain now: this one, and in a
        # cluster the other live nodes' (``cluster``); rows others held are released.
        self.live_holders: Callable[[], set[str]] = lambda: {self.incarnation}
        # ``serve --workers``: every listener shares its port with the other workers'
        # (SO_REUSEPORT; the kernel spreads new connections over them).
        self.reuse_port = False
        # What ``/readyz`` checks besides storage, by name (the cluster adds Redis and its
        # lease): each answers True when ready.
        self.readiness: dict[str, Callable[[], Awaitable[bool]]] = {}
        # Told when a feature changed state other nodes of a cluster keep too (``announce``).
        self.announcers: list[Callable[[str, str], Awaitable[None]]] = []
        # What must be written before the server acknowledges a client's stanzas (XEP-0198):
        # write-behind queues register their flush here (docs/guarantees.md).
        self.barriers: list[Callable[[], Awaitable[None]]] = []
        # Write-behind queues that a busy producer waits for (``Session`` checks after each
        # stanza it handles): bounded memory when storage is slower than the clients.
        self.backlogs: list[Backlog] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- features -----------------------------------------------------------------------------

    def disco_features(self) -> set[str]:
        features: set[str] = set()
        for module in self.modules.values():
            features.update(module.features)
        return features

    async def durable(self) -> None:
        """Return once everything handled so far is written (each write-behind queue flushed)."""
        barriers = self.barriers
        if len(barriers) == 1:
            await barriers[0]()
        elif barriers:
            await asyncio.gather(*(flush() for flush in barriers))

    # -- tasks --------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run a background task owned by the host: logged if it fails, cancelled at stop."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for running background work (shutdown), then cancel what is left."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def announce(self, topic: str, key: str) -> None:
        """State a feature keeps per node changed (the blocklist of user ``key``): in a cluster
        the other nodes hear ``notice/<topic>`` with ``key``; alone, nothing happens."""
        for announcer in self.announcers:
            try:
                await announcer(topic, key)
            except Exception:
                log.warning("announcing %s %s failed", topic, key, exc_info=True)

    # -- sessions -----------------------------------------------------------------------------

    def session_ended(self, session: Session) -> None:
        """Every way a session ends comes here once: unbind, then tell the features."""
        if session.jid is not None:
            self.sessions.unbind(session.jid)
            # Every feature hears of it, whatever another one's handler did.
            self.spawn(self.events.notify("session-ended", session), name="session-ended")
