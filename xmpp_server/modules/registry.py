"""The feature modules this server knows, by the name used in ``[modules] enabled``."""

from __future__ import annotations

import importlib

from xmpp_server.config import ConfigError
from xmpp_server.modules.base import Module

MODULES: dict[str, str] = {
    "disco": "xmpp_server.modules.disco:Disco",
    "ping": "xmpp_server.modules.ping:Ping",
    "version": "xmpp_server.modules.version:Version",
    "time": "xmpp_server.modules.time:Time",
    "last": "xmpp_server.modules.last:LastActivity",
    "register": "xmpp_server.modules.register:Register",
    "roster": "xmpp_server.modules.roster:Roster",
    "presence": "xmpp_server.modules.presence:Presence",
    "messages": "xmpp_server.modules.messages:Messages",
    "delay": "xmpp_server.modules.delay:DelayGuard",
    "offline": "xmpp_server.modules.offline:Offline",
    "push": "xmpp_server.modules.push:Push",
    "carbons": "xmpp_server.modules.carbons:Carbons",
    "csi": "xmpp_server.modules.csi:ClientStateIndication",
    "blocking": "xmpp_server.modules.blocking:Blocking",
    "vcard": "xmpp_server.modules.vcard:VCard",
    "pep": "xmpp_server.modules.pep:Pep",
    "avatars": "xmpp_server.modules.avatars:Avatars",
    "private": "xmpp_server.modules.private:PrivateStorage",
    "bookmarks": "xmpp_server.modules.bookmarks:Bookmarks",
    "mam": "xmpp_server.modules.mam:Mam",
    "stream_mgmt": "xmpp_server.modules.stream_mgmt:StreamManagement",
    "http_upload": "xmpp_server.modules.http_upload:HttpUpload",
    "muc": "xmpp_server.modules.muc:Muc",
}


def load(name: str) -> type[Module]:
    path = MODULES.get(name)
    if path is None:
        raise ConfigError(f"modules.enabled: unknown module {name!r}")
    module_name, _, attr = path.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    assert issubclass(cls, Module)
    return cls


def resolve(names: list[str]) -> list[type[Module]]:
    """The enabled modules and their dependencies, each after what it depends on."""
    order: list[type[Module]] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in chain:
            raise ConfigError(f"modules.enabled: dependency cycle {' -> '.join((*chain, name))}")
        cls = load(name)
        for dep in cls.depends:
            visit(dep, (*chain, name))
        seen.add(name)
        order.append(cls)

    for name in names:
        visit(name, ())
    return order
