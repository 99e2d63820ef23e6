"""XEP-0054: vcard-temp — each account's vCard, which anyone may read and only its owner write.

A get with no ``to`` (or to the own bare JID) returns the user's vCard, a get to another
account's bare JID that account's (readable by anyone, as on Prosody); an account without one
answers an empty ``<vCard/>`` (§3.1 allows it). A set is for the own account only (forbidden
otherwise) and is refused past ``limits.max_vcard_bytes``.

Fires ``vcard-stored`` (arg: ``VCardStored``) after each change; the avatar bridge (XEP-0398)
reacts to what clients store and writes back through ``store(..., by_client=False)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, element, iq_result

NS = "vcard-temp"
VCARD = "{" + NS + "}vCard"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class VCardStored:
    username: str
    vcard: etree._Element
    by_client: bool


class VCard(Module):
    name = "vcard"
    xeps = (54,)
    features = (NS,)

    def setup(self) -> None:
        self.max_bytes = self.host.config.limits.max_vcard_bytes
        self.on_iq("get", "bare", VCARD, self.get_vcard)
        self.on_iq("set", "bare", VCARD, self.set_vcard)

    async def load(self, username: str) -> etree._Element | None:
        xml = await self.host.storage.vcards.get(username)
        return None if xml is None else etree.fromstring(xml.encode(), _PARSER)

    async def store(self, username: str, vcard: etree._Element, *, by_client: bool) -> bool:
        """Keep the vCard (False: no such account) and tell the features."""
        if not await self.host.storage.vcards.set(username, etree.tostring(vcard).decode()):
            return False
        await self.host.events.fire("vcard-stored", VCardStored(username, vcard, by_client))
        return True

    async def get_vcard(self, stanza: Stanza) -> bool:
        assert stanza.frm is not None
        target = stanza.to or stanza.frm.bare
        assert target.local is not None
        own = target == stanza.frm.bare
        if not own and not await self.host.accounts.exists(target.local):
            raise StanzaError("service-unavailable")  # RFC 6121 §8.5.1: no such account
        vcard = await self.load(target.local)
        if vcard is None:
            vcard = element(VCARD)
        await self.host.router.reply(stanza, iq_result(stanza, vcard))
        return True

    async def set_vcard(self, stanza: Stanza) -> bool:
        assert stanza.frm is not None and stanza.child is not None
        if stanza.to is not None and stanza.to != stanza.frm.bare:
            raise StanzaError("forbidden", "a vCard can only be set by its owner")
        username = stanza.frm.local
        assert username is not None
        vcard = stanza.child
        if len(etree.tostring(vcard)) > self.max_bytes:
            raise StanzaError("not-acceptable", f"a vCard may be at most {self.max_bytes} bytes")
        if not await self.store(username, vcard, by_client=True):
            raise StanzaError("item-not-found", "no such account")
        await self.host.router.reply(stanza, iq_result(stanza))
        return True
