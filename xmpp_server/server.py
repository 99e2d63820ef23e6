"""The wiring root: builds configuration, storage, host, feature modules and listeners.

``Server.start()`` brings everything up in order and ``Server.stop()`` takes it down in reverse:
listeners stop accepting, sessions get ``</stream:stream>`` (system-shutdown), background work
drains, modules stop, storage closes. A start that fails half-way (a port already taken)
stops what it had started before the error reaches the command line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from storage import Storage, open_storage
from xmpp_server import fdlimits
from xmpp_server.accounts import load_secret as load_auth_secret
from xmpp_server.cluster import Cluster
from xmpp_server.config import Config
from xmpp_server.federation.component import ComponentListener
from xmpp_server.federation.manager import Federation
from xmpp_server.host import Host
from xmpp_server.modules import registry
from xmpp_server.stream import certificates, tls
from xmpp_server.stream.c2s import C2SListener
from xmpp_server.stream.fast_key import load as load_fast_key

if TYPE_CHECKING:
    from web_bridge.admin_socket import AdminSocket

log = logging.getLogger(__name__)


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.host: Host | None = None
        self.storage: Storage | None = None
        self.c2s: list[C2SListener] = []
        self.http: object | None = None
        self.admin: AdminSocket | None = None  # the local admin endpoint
        self.federation: Federation | None = None
        self.components: ComponentListener | None = None
        self.cluster: Cluster | None = None
        self.worker: int | None = None  # the worker's number under ``serve --workers``
        self.failure: str | None = None  # why the server stopped by itself
        self._stopped = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._accept_errors = fdlimits.AcceptErrors()

    @property
    def c2s_port(self) -> int:
        return self.c2s[0].port

    @property
    def direct_tls_port(self) -> int | None:
        return self.c2s[1].port if len(self.c2s) > 1 else None

    async def start(self) -> None:
        """Bring everything up; if anything fails (a port taken, the database unreachable),
        what was started is stopped again before the error propagates."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        config = self.config
        module_classes = registry.resolve(config.modules.enabled)  # config errors first
        fdlimits.raise_nofile_limit()
        self._accept_errors.install(asyncio.get_running_loop())
        self.storage = await open_storage(config.storage.url)
        host = self.host = Host(config, self.storage, load_auth_secret(config))
        host.reuse_port = self.worker is not None  # ``serve --workers``: ports are shared
        cert, key = certificates.server_certificate(config)
        host.ssl_context = tls.server_context(cert, key)
        host.tls_cert_der = certificates.certificate_der(cert)
        if config.c2s.sasl2 and config.c2s.fast_token_ttl > 0:
            host.fast_key = load_fast_key(config)  # XEP-0484: made once, like the certificate
        for cls in module_classes:
            module = cls(host)
            module.setup()
            host.modules[cls.name] = module
        if config.cluster.redis_url:
            # Before the features start: offline storage releases only dead nodes' rows.
            self.cluster = Cluster(host, config.cluster, self.worker, on_lost=self._lease_lost)
            await self.cluster.start()
        for module in host.modules.values():
            await module.start()
        c2s = config.c2s
        self.c2s.append(C2SListener(host, c2s.bind, c2s.port, direct_tls=False))
        if c2s.direct_tls_port:
            self.c2s.append(C2SListener(host, c2s.bind, c2s.direct_tls_port, direct_tls=True))
        for listener in self.c2s:
            await listener.start()
        if config.s2s.enabled:
            self.federation = Federation(host, cert, key)
            await self.federation.start()
        if config.components.secrets:
            self.components = ComponentListener(host)
            await self.components.start()
        if config.http.enabled:
            from web_bridge.app import HttpService

            self.http = http = HttpService(host, self.c2s)
            await http.start()
        from web_bridge.admin_socket import AdminSocket, path_of

        admin = AdminSocket(host, path_of(config))
        await admin.start()
        self.admin = admin
        log.info("serving %s", host.domain)

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.stop()
            self.admin = None
        for listener in self.c2s:
            await listener.stop_accepting()
        if self.federation is not None:
            self.federation.stop_accepting()
        await asyncio.gather(*(listener.close_sessions() for listener in self.c2s))
        if self.http is not None:
            await self.http.stop()  # type: ignore[attr-defined]
            self.http = None
        host = self.host
        if host is not None:
            await asyncio.sleep(0)  # let connection_lost callbacks run
            # Sessions kept without a connection (XEP-0198) end now, while storage is open.
            await host.events.fire("server-stopping")
            await host.drain()
            # Server-to-server streams and components close once what the sessions left
            # behind (unavailable presence to remote contacts) has gone out.
            if self.federation is not None:
                await self.federation.stop()
                self.federation = None
            if self.components is not None:
                await self.components.stop()
                self.components = None
            if self.cluster is not None:
                await self.cluster.stop()
                self.cluster = None
            for module in reversed(list(host.modules.values())):
                await module.stop()
                module.teardown()
        if self.storage is not None:
            await self.storage.close()
            self.storage = None
        self.c2s.clear()
        self._accept_errors.uninstall()
        self._stopped.set()

    def _lease_lost(self, why: str) -> None:
        """This node may no longer serve (its lease in the cluster is gone): its clients
        reconnect to a node that holds one."""
        self.failure = f"lost the cluster lease: {why}"
        for listener in self.c2s:  # at once: another node may have their resources now
            asyncio.get_running_loop().create_task(listener.close_sessions())
        self._stop_requested.set()

    async def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        stop = self._stop_requested
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            await self.stop()
