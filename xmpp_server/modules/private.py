"""XEP-0049: Private XML Storage — any namespaced element, kept per user by qualified name.

A set stores each child of the query (one element per namespace and name, replacing the
previous one); a get names one element and gets it back, or the empty element if nothing is
stored. Only the user's own account can be addressed (forbidden otherwise, §2.3). Elements
in the reserved ``jabber:`` and ``vcard-temp`` namespaces are refused with not-acceptable,
which §2.3 permits. The user's documents together may take ``limits.max_private_bytes``.

Another feature may own an element (XEP-0402 bookmarks own ``storage:bookmarks``): it
handles the events ``private-get/{ns}name`` and ``private-set/{ns}name`` (arg:
``PrivateRequest``), filling ``result`` for a get, and returns True.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, element, iq_result

NS = "jabber:iq:private"
QUERY = "{" + NS + "}query"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class PrivateRequest:
    stanza: Stanza
    username: str
    element: etree._Element  # the element stored (set) or asked for (get)
    result: etree._Element | None = None


def _key(el: etree._Element) -> str:
    """``{namespace}name`` of a stored element; reserved or missing namespaces refused."""
    tag = el.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        raise StanzaError("not-acceptable", "private data must be in its own namespace")
    namespace = etree.QName(tag).namespace or ""
    if namespace.startswith("jabber:") or namespace == "vcard-temp":
        raise StanzaError("not-acceptable", f"the namespace {namespace} is reserved")
    return tag


class PrivateStorage(Module):
    name = "private"
    xeps = (49,)
    features = (NS,)

    def setup(self) -> None:
        self.max_bytes = self.host.config.limits.max_private_bytes
        self.on_iq("get", "bare", QUERY, self.get)
        self.on_iq("set", "bare", QUERY, self.set)

    def _username(self, stanza: Stanza) -> tuple[str, list[etree._Element]]:
        assert stanza.frm is not None and stanza.child is not None
        if stanza.to is not None and stanza.to != stanza.frm.bare:
            raise StanzaError("forbidden", "private data belongs to its owner")
        assert stanza.frm.local is not None
        children = [c for c in stanza.child if isinstance(c.tag, str)]
        if not children:  # §2.3: at least one child element
            raise StanzaError("not-acceptable", "name the element to store or retrieve")
        return stanza.frm.local, children

    async def get(self, stanza: Stanza) -> bool:
        username, children = self._username(stanza)
        if len(children) > 1:  # §2.3: one namespace per get
            raise StanzaError("bad-request", "retrieve one element at a time")
        asked = children[0]
        key = _key(asked)
        request = PrivateRequest(stanza, username, asked)
        if await self.host.events.fire(f"private-get/{key}", request):
            found = request.result
        else:
            xml = await self.host.storage.private.get(username, key)
            found = None if xml is None else etree.fromstring(xml.encode(), _PARSER)
        query = element(QUERY)
        query.append(found if found is not None else element(key))
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True

    async def set(self, stanza: Stanza) -> bool:
        username, children = self._username(stanza)
        documents: dict[str, str] = {}
        owned: list[tuple[str, etree._Element]] = []
        for child in children:
            key = _key(child)
            if self.host.events.has(f"private-set/{key}"):
                owned.append((key, child))
            else:
                documents[key] = etree.tostring(child).decode()
        if documents and not await self.host.storage.private.set(username, documents,
                                                                 self.max_bytes):
            raise StanzaError("not-acceptable",
                              f"private storage is limited to {self.max_bytes} bytes per user")
        for key, child in owned:
            await self.host.events.fire(f"private-set/{key}",
                                        PrivateRequest(stanza, username, child))
        await self.host.router.reply(stanza, iq_result(stanza))
        return True
