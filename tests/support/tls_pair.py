"""TLS handshakes in memory (as asyncio drives ``ssl.SSLObject``), for the TLS unit tests."""

from __future__ import annotations

import ssl
from pathlib import Path

from xmpp_server.stream import tls

DOMAIN = "example.test"


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """A complete TLS handshake between two in-memory SSLObjects (as asyncio uses them)."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=DOMAIN)
    done = {"server": False, "client": False}
    for _ in range(20):
        for name, obj in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # Deliver TLS 1.3 session tickets and the like.
            for obj in (client, server):
                try:
                    obj.read(1)
                except ssl.SSLWantReadError:
                    pass
            return server, client
    raise AssertionError("handshake did not complete")


def contexts(
    cert_pair: tuple[Path, Path], version: ssl.TLSVersion
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_ctx = tls.server_context(*cert_pair)
    server_ctx.maximum_version = version
    client_ctx = tls.client_context(verify=True, cafile=cert_pair[0])
    return server_ctx, client_ctx
