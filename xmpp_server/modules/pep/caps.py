"""XEP-0115: what an entity can do, learnt from the capabilities in its presence.

The first time a verification string is seen the server asks the entity (disco#info to its
full JID, node ``node#ver``), checks the answer against the string (§5.4) and remembers the
features under it: every later entity announcing the same string costs nothing. An answer
that does not verify is used for nobody (a client cannot poison the cache for others).
Only the sha-1 hash is checked, as every client in use sends it; other hashes and legacy caps
(no ``hash``) count as no features.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.modules.disco import Form, Identity, caps_ver
from xmpp_server.stanza import element, sub

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.jid import JID

log = logging.getLogger(__name__)

_C = "{" + ns.CAPS + "}c"
_INFO = "{" + ns.DISCO_INFO + "}"
_X = "{" + ns.DATA_FORMS + "}"
_XML_LANG = "{" + ns.XML + "}lang"
NOTIFY = "+notify"
NONE: frozenset[str] = frozenset()


def caps_of(presence: etree._Element | None) -> etree._Element | None:
    return None if presence is None else presence.find(_C)


def notify_nodes(features: Iterable[str]) -> frozenset[str]:
    """XEP-0163 §4.3.1: the nodes an entity wants notifications of ("<node>+notify")."""
    return frozenset(f[: -len(NOTIFY)] for f in features if f.endswith(NOTIFY))


def verify(query: etree._Element, ver: str) -> frozenset[str] | None:
    """§5.4: the features of a disco#info answer, if it hashes to ``ver``; else None."""
    identities: list[Identity] = [
        (i.get("category", ""), i.get("type", ""), i.get(_XML_LANG), i.get("name"))
        for i in query.iterchildren(_INFO + "identity")
    ]
    features = [f.get("var", "") for f in query.iterchildren(_INFO + "feature")]
    forms: list[Form] = []
    for x in query.iterchildren(_X + "x"):
        form: dict[str, list[str]] = {}
        for field in x.iterchildren(_X + "field"):
            var = field.get("var")
            if var is None:
                continue
            if var in form:
                return None
            form[var] = [v.text or "" for v in field.iterchildren(_X + "value")]
        if "FORM_TYPE" in form:  # §5.4 3.6: forms without one are ignored
            forms.append(form)
    form_types = [f["FORM_TYPE"][0] for f in forms if f["FORM_TYPE"]]
    if (len(set(identities)) != len(identities) or len(set(features)) != len(features)
            or len(set(form_types)) != len(forms)):
        return None  # §5.4 3.3-3.5
    if caps_ver(identities, features, forms) != ver:
        return None
    return frozenset(features)


class Caps:
    def __init__(self, host: Host, size: int = 4096, timeout: float = 5.0) -> None:
        self.host = host
        self.size = size
        self.timeout = timeout
        self._known: dict[str, frozenset[str]] = {}  # verified ver -> features
        self._pending: dict[str, asyncio.Future[frozenset[str]]] = {}

    def cached(self, c: etree._Element | None) -> frozenset[str] | None:
        """The features of caps already verified (None: not known yet)."""
        if c is None:
            return NONE
        if c.get("hash") != "sha-1" or not c.get("node") or not c.get("ver"):
            return NONE
        return self._known.get(c.get("ver", ""))

    async def features(self, jid: JID, c: etree._Element | None) -> frozenset[str]:
        """The features of the entity at ``jid`` that announced caps ``c``."""
        known = self.cached(c)
        if known is not None:
            return known
        assert c is not None
        ver, node = c.get("ver", ""), c.get("node", "")
        pending = self._pending.get(ver)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._pending[ver] = pending
            try:
                result = await self._query(jid, node, ver)
            except BaseException:
                pending.cancel()  # the waiters ask again themselves
                raise
            finally:
                del self._pending[ver]
            pending.set_result(result)
            return result
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            if pending.cancelled():
                return await self.features(jid, c)
            raise

    async def _query(self, jid: JID, node: str, ver: str) -> frozenset[str]:
        iq = element("iq", type="get", from_=self.host.domain, to=str(jid))
        sub(iq, _INFO + "query", node=f"{node}#{ver}")
        try:
            reply = await self.host.router.iq(iq, self.timeout)
        except TimeoutError:
            log.info("no disco#info answer from %s for caps %s", jid, ver)
            return NONE
        except Exception:
            log.exception("asking %s for its caps %s", jid, ver)
            return NONE
        query = reply.find(_INFO + "query")
        if reply.get("type") != "result" or query is None:
            return NONE
        features = verify(query, ver)
        if features is None:
            log.info("caps of %s do not verify: %s", jid, ver)
            return NONE
        if len(self._known) >= self.size:
            del self._known[next(iter(self._known))]  # the oldest
        self._known[ver] = features
        return features
