"""XEP-0280: Message Carbons, with the XEP-0334 <no-copy/> hint.

A session turns carbons on or off with an IQ-set to its own account (§4, §5; repeating either
is fine, §10.1). Copies go to the user's other sessions that enabled carbons, are available
(sent presence) and still connected:

- received (§7): a message eligible for carbons that is delivered to a local user (the
  ``message/delivering`` event of the messages module names the sessions that get the
  original, which get no copy) is copied, wrapped in <received/>, to the other sessions;
- sent (§8): a message a local client sends (``pre-message``) is copied, wrapped in <sent/>,
  to the sender's other sessions, whether or not the sending one enabled carbons.

Eligible (§6, its suggested rules): type chat, or normal with a <body/>. Never: a carbon
itself, a message with <private/> (§9; stripped before delivery to a local recipient) or the
XEP-0334 §4.3 <no-copy/> hint, nor one that carries MUC user data (<x xmlns='muc#user'/>: sent
by a room, or a private message between occupants, §6). Errors are not copied: §6 allows it
only for bounces of copied messages, which would need the server to track what it copied.
A message to the user's own account is copied on the receiving side only.

Carbons can also be enabled inline in a XEP-0386 Bind 2 request (announced there; as enabling
always succeeds, <bound/> gets no answer, XEP-0386 §3.2).
"""

from __future__ import annotations

from copy import deepcopy
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.modules.base import Module, own_session
from xmpp_server.modules.messages import DELIVERING
from xmpp_server.stanza import Stanza, element, iq_result, sub
from xmpp_server.stream import bind2

if TYPE_CHECKING:
    from xmpp_server.stream.sasl2 import Login
    from xmpp_server.stream.session import Session

ENABLE = "{" + ns.CARBONS + "}enable"
DISABLE = "{" + ns.CARBONS + "}disable"
_PRIVATE = "{" + ns.CARBONS + "}private"
_SENT = "{" + ns.CARBONS + "}sent"
_RECEIVED = "{" + ns.CARBONS + "}received"
_FORWARDED = "{" + ns.FORWARD + "}forwarded"
_NO_COPY = "{" + ns.HINTS + "}no-copy"
_MUC_USER = "{" + ns.MUC_USER + "}x"
_BODY = "{" + ns.CLIENT + "}body"
_OWN_ONLY = "carbons are set for one's own sessions only"
# Any of these children makes a message ineligible, whatever its type.
_NEVER = frozenset((_PRIVATE, _NO_COPY, _SENT, _RECEIVED, _MUC_USER))


def eligible(el: etree._Element) -> bool:
    """§6: whether a message is copied (its <private/> is checked here too, §9)."""
    type_ = el.get("type", "normal")
    if type_ not in ("chat", "normal"):
        return False
    body = False
    for child in el:
        tag = child.tag
        if tag in _NEVER:
            return False
        if tag == _BODY:
            body = True
    return body or type_ == "chat"


def strip_private(el: etree._Element) -> bool:
    """§9: remove <private/> before the recipient sees it; True if there was one."""
    found = list(el.iterchildren(_PRIVATE))
    for child in found:
        el.remove(child)
    return bool(found)


def wrap(el: etree._Element, direction: str, user: str) -> etree._Element:
    """§7, §8: the copy, from the user's bare JID, the original inside XEP-0297 <forwarded/>."""
    carbon = element("message", from_=user, type=el.get("type"))
    forwarded = sub(sub(carbon, "{" + ns.CARBONS + "}" + direction), _FORWARDED)
    forwarded.append(deepcopy(el))
    return carbon


class Carbons(Module):
    name = "carbons"
    xeps = (280,)
    features = (ns.CARBONS,)
    depends = ("messages",)

    def setup(self) -> None:
        # username -> the sessions that enabled carbons: a user without any costs one lookup
        self._enabled: dict[str, set[Session]] = {}
        self.on_iq("set", "bare", ENABLE, self.enable)
        self.on_iq("set", "bare", DISABLE, self.disable)
        self.on(DELIVERING, self.received)
        # Late: a filter that refuses the message (blocking) runs first and stops the chain.
        self.on("pre-message", self.sent, priority=-10)
        self.on("session-ended", self.session_ended)
        self.on("bind2-inline/" + ENABLE, self.enable_inline)
        self.offer(self._offer_inline)

    @staticmethod
    def _offer_inline(session: Session, features: etree._Element) -> None:
        bind2.offer(features, ns.CARBONS)

    # -- enabling (§4, §5) --------------------------------------------------------------------

    async def enable(self, stanza: Stanza) -> bool:
        username, session = own_session(stanza, _OWN_ONLY)
        if not session.closed:
            self._enabled.setdefault(username, set()).add(session)
        await self.host.router.reply(stanza, iq_result(stanza))
        return True

    def enable_inline(self, arg: tuple[Login, etree._Element]) -> bool:
        session = arg[0].session
        if session.username is not None:
            self._enabled.setdefault(session.username, set()).add(session)
        return True

    async def disable(self, stanza: Stanza) -> bool:
        username, session = own_session(stanza, _OWN_ONLY)
        self._forget(username, session)
        await self.host.router.reply(stanza, iq_result(stanza))
        return True

    def session_ended(self, session: Session) -> None:
        if session.username is not None:
            self._forget(session.username, session)

    def _forget(self, username: str, session: Session) -> None:
        sessions = self._enabled.get(username)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._enabled[username]

    # -- copies -------------------------------------------------------------------------------

    def received(self, arg: tuple[Stanza, list[Session]]) -> None:
        """§7: the user's other sessions get what was delivered to some of them (or stored)."""
        stanza, recipients = arg
        el = stanza.el
        if strip_private(el):
            return
        to = stanza.to
        assert to is not None and to.local is not None
        enabled = self._enabled.get(to.local)
        if not enabled or not eligible(el):
            return
        origin = stanza.origin  # a message to oneself: its sender gets no copy of it
        targets = [s for s in enabled
                   if s not in recipients and s is not origin and s.available and not s.closed]
        if targets:
            self._copy(el, "received", to.bare_str, targets)

    def sent(self, stanza: Stanza) -> None:
        """§8: the sender's other sessions get what one of them sent."""
        frm, origin = stanza.frm, stanza.origin
        if origin is None or frm is None or frm.local is None:
            return
        enabled = self._enabled.get(frm.local)
        if not enabled:
            return
        to = stanza.to
        if to is None or (to.local == frm.local and to.domain == frm.domain):
            return  # to the user's own account: the receiving side copies it
        targets = [s for s in enabled if s is not origin and s.available and not s.closed]
        if targets and eligible(stanza.el):
            self._copy(stanza.el, "sent", frm.bare_str, targets)

    @staticmethod
    def _copy(el: etree._Element, direction: str, user: str, targets: list[Session]) -> None:
        carbon = wrap(el, direction, user)
        for session in targets:
            assert session.jid is not None
            carbon.set("to", str(session.jid))  # §7: to the full JID of each resource
            session.send(carbon)
