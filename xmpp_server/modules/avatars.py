"""XEP-0153 vCard-based avatars and XEP-0398 conversion between vCard and PEP avatars.

As Prosody's mod_vcard_legacy does:

- a client storing a vCard with a PHOTO publishes it as a XEP-0084 avatar (``data`` and
  ``metadata`` nodes, item id = SHA-1 of the image; open access, since the vCard is public
  too); a vCard without PHOTO disables the avatar (XEP-0084 §4.2 empty metadata);
- a client publishing XEP-0084 metadata puts that image into the vCard PHOTO;
- the user's available presence carries ``<x xmlns='vcard-temp:x:update'><photo>`` with the
  hash of the current avatar (XEP-0153 §4.1), replacing what the client said; while the server
  knows of no avatar node the client's own element is left alone.

The account announces ``urn:xmpp:pep-vcard-conversion:0`` (XEP-0398 §3).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from typing import TYPE_CHECKING, cast

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.modules.pep import PepChange
from xmpp_server.modules.pep.nodes import NodeConfig
from xmpp_server.modules.pep.service import parse_item
from xmpp_server.modules.vcard import NS as VCARD_NS
from xmpp_server.modules.vcard import VCARD, VCardStored
from xmpp_server.stanza import Stanza, element, sub

if TYPE_CHECKING:
    from xmpp_server.modules.disco import DiscoReply
    from xmpp_server.modules.pep import Pep
    from xmpp_server.modules.vcard import VCard

log = logging.getLogger(__name__)

DATA = "urn:xmpp:avatar:data"
METADATA = "urn:xmpp:avatar:metadata"
UPDATE = "vcard-temp:x:update"
CONVERSION = "urn:xmpp:pep-vcard-conversion:0"
_V = "{" + VCARD_NS + "}"
_INFO = "{" + METADATA + "}info"
AVATAR_NODES = NodeConfig(access_model="open")
_CACHE_SIZE = 100_000


def avatar_hash(metadata: etree._Element | None) -> str:
    """The id of the current avatar in a metadata payload; "" when it is disabled."""
    info = None if metadata is None else metadata.find(_INFO)
    return "" if info is None else info.get("id", "")


class Avatars(Module):
    name = "avatars"
    xeps = (153, 398)
    depends = ("vcard", "pep")

    def setup(self) -> None:
        self.pep = cast("Pep", self.host.modules["pep"]).service
        self.vcards = cast("VCard", self.host.modules["vcard"])
        self._hashes: dict[str, str | None] = {}  # username -> hash, "" none, None no node
        self.on("vcard-stored", self.vcard_stored)
        self.on("pep-published", self.published)
        self.on("pep-retracted", self.retracted)
        self.on("pre-presence", self.presence, priority=5)
        self.on("disco-info/account", self.account_info)
        self.on("user-deleted", self.forget)

    def account_info(self, reply: DiscoReply) -> None:
        reply.feature(CONVERSION)

    def forget(self, username: str) -> None:
        self._hashes.pop(username, None)

    async def current_hash(self, username: str) -> str | None:
        if username in self._hashes:
            return self._hashes[username]
        items = await self.host.storage.pep.items(username, METADATA, last=1)
        value = None
        if items:
            value = avatar_hash(parse_item(items[0]))
        if len(self._hashes) >= _CACHE_SIZE:
            self._hashes.clear()
        self._hashes[username] = value
        return value

    # -- XEP-0153 §4.1: the hash in presence --------------------------------------------------

    async def presence(self, stanza: Stanza) -> None:
        session = stanza.origin
        if session is None or session.username is None or stanza.type is not None:
            return
        current = await self.current_hash(session.username)
        if current is None:
            return
        for old in stanza.el.findall("{" + UPDATE + "}x"):
            stanza.el.remove(old)
        x = sub(stanza.el, "{" + UPDATE + "}x")
        sub(x, "photo", current or None)

    # -- vCard -> PEP (XEP-0398 §4) -----------------------------------------------------------

    async def vcard_stored(self, event: VCardStored) -> None:
        if not event.by_client:
            return
        username = event.username
        binval = "".join((event.vcard.findtext(f"{_V}PHOTO/{_V}BINVAL") or "").split())
        try:
            image = base64.b64decode(binval, validate=True)
        except (binascii.Error, ValueError):
            log.info("vCard PHOTO of %s is not base64; avatar left as it was", username)
            return
        current = await self.current_hash(username)
        try:
            if not image:
                if current:  # XEP-0084 §4.2: the avatar is disabled
                    await self.pep.publish(username, METADATA, "current", element(
                        "{" + METADATA + "}metadata"), defaults=AVATAR_NODES)
                return
            digest = hashlib.sha1(image).hexdigest()
            if digest == current:
                return
            mime = (event.vcard.findtext(f"{_V}PHOTO/{_V}TYPE") or "image/png").strip()
            data = element("{" + DATA + "}data")
            data.text = base64.b64encode(image).decode()
            await self.pep.publish(username, DATA, digest, data, defaults=AVATAR_NODES)
            metadata = element("{" + METADATA + "}metadata")
            sub(metadata, "info", id=digest, bytes=str(len(image)), type=mime)
            await self.pep.publish(username, METADATA, digest, metadata, defaults=AVATAR_NODES)
        except StanzaError as exc:
            log.info("vCard avatar of %s not published: %s", username, exc)

    # -- PEP -> vCard (XEP-0398 §5) -----------------------------------------------------------

    async def published(self, change: PepChange) -> None:
        if change.node != METADATA:
            return
        digest = avatar_hash(change.payload)
        self._hashes[change.owner] = digest
        if change.actor is None:
            return
        vcard = await self.vcards.load(change.owner)
        if vcard is None:
            vcard = element(VCARD)
        photo = vcard.find(f"{_V}PHOTO")
        if photo is not None:
            vcard.remove(photo)
        if digest:
            found = await self.host.storage.pep.items(change.owner, DATA, ids=[digest])
            if not found:
                return  # an avatar served elsewhere (XEP-0084 url): no data for the vCard
            data = parse_item(found[0])
            info = change.payload.find(_INFO) if change.payload is not None else None
            photo = sub(vcard, "PHOTO")
            sub(photo, "TYPE", (info.get("type") if info is not None else None) or "image/png")
            sub(photo, "BINVAL", "".join((data.text or "").split()))
        elif photo is None:
            return  # disabled, and the vCard had no photo anyway
        await self.vcards.store(change.owner, vcard, by_client=False)

    def retracted(self, change: PepChange) -> None:
        if change.node == METADATA:
            self._hashes.pop(change.owner, None)
