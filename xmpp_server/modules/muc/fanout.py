"""Room fan-out: a stanza is serialised once per recipient form, then only its 'to' varies.

A room sends the same message (or presence) to every occupant session. ``Template`` holds the
stanza serialised without its 'to'; each recipient ``Target`` keeps its ``to="..."`` attribute
pre-encoded, so a delivery to a local session is two byte joins and one transport write.

Local sessions are written to directly: for groupchat stanzas the router's ``message/full`` and
``presence/full`` chains would only deliver them. A session with an output filter (XEP-0352)
gets the element itself (the filter serialises what it holds at once). Recipients on other
servers or nodes (no local session) go through the router, each with a copy of the element.
Writing past the router skips its blocking checks, so while some online user blocks someone
(``host.refusals``, XEP-0191 §5.3) the sender is checked for each local session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from copy import deepcopy
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server.errors import JIDError
from xmpp_server.jid import JID

if TYPE_CHECKING:
    from xmpp_server.host import Host, Refusal
    from xmpp_server.stream.session import Session


_NAME = re.compile(rb"<[^\s/>]+")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


class Template:
    """One stanza (without 'to') serialised once; ``for_target`` adds the recipient."""

    __slots__ = ("_el", "head", "tail")

    def __init__(self, el: etree._Element | None, data: bytes | None = None) -> None:
        self._el = el
        if data is None:
            assert el is not None
            data = etree.tostring(el)
            # The start tag is "<message" / "<presence" (default namespace, no prefix): the
            # 'to' attribute goes right after the name, before the namespace declaration.
            cut = 1 + len(etree.QName(el).localname)
        else:
            match = _NAME.match(data)
            assert match is not None
            cut = match.end()
        self.head = data[:cut]
        self.tail = data[cut:]

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        """A template from our own serialisation (the element is parsed only if needed)."""
        return cls(None, data)

    @property
    def el(self) -> etree._Element:
        if self._el is None:
            self._el = etree.fromstring(self.head + self.tail, _PARSER)
        return self._el

    def with_child(self, child: bytes) -> Template:
        """A copy with one more (serialised) child at the end, e.g. a <delay/>."""
        close = self.tail.rindex(b"</")
        return Template.from_bytes(self.head + self.tail[:close] + child + self.tail[close:])

    def for_target(self, target: Target) -> bytes:
        return self.head + target.to_attr + self.tail

    def addressed(self, to: JID) -> etree._Element:
        """A copy of the element with its 'to' (for the router)."""
        el = deepcopy(self.el)
        el.set("to", str(to))
        return el


class Target:
    """One session of an occupant: its real full JID and, when local, its Session."""

    __slots__ = ("jid", "presence", "session", "to_attr")

    def __init__(self, jid: JID, session: Session | None, presence: etree._Element) -> None:
        self.jid = jid
        self.session = session
        self.presence = presence  # what this session last sent the room, cleaned
        self.to_attr = f' to="{_escape(str(jid))}"'.encode()


def _sender(template: Template) -> JID | None:
    frm = template.el.get("from")
    try:
        return JID.parse(frm) if frm else None
    except JIDError:
        return None


def _refused(refusals: list[Refusal], session: Session, sender: JID) -> bool:
    username = session.username
    return username is not None and any(refuses(username, sender) for refuses in refusals)


class Fanout:
    def __init__(self, host: Host) -> None:
        self.host = host

    async def send(self, template: Template, targets: Iterable[Target]) -> None:
        """Deliver one stanza to each target."""
        remote: list[Target] | None = None
        refusals = self.host.refusals
        sender = _sender(template) if refusals else None
        for target in targets:
            session = target.session
            if session is None:
                if remote is None:
                    remote = []
                remote.append(target)
            elif session.closed:
                continue  # its session-ended handler takes it out of the room
            elif sender is not None and _refused(refusals, session, sender):
                continue
            elif session.filter is None:
                session.send_bytes(template.head + target.to_attr + template.tail)
            else:
                el = template.el
                el.set("to", str(target.jid))
                try:
                    session.send(el)
                finally:
                    del el.attrib["to"]
        if remote:
            for target in remote:
                await self.host.router.send(template.addressed(target.jid))

    async def send_one(self, template: Template, target: Target) -> None:
        await self.send(template, (target,))

    async def send_many(self, templates: list[Template], target: Target) -> None:
        """Several stanzas to one session (entering a room): one write when nothing counts
        or filters stanzas one by one (stream management, client state indication)."""
        session = target.session
        if (session is not None and session.filter is None and session.sm is None
                and not self.host.refusals):
            if not session.closed and templates:
                to = target.to_attr
                session.send_bytes(b"".join(b"".join((t.head, to, t.tail)) for t in templates))
            return
        for template in templates:
            await self.send(template, (target,))
