"""XEP-0077: In-Band Registration — create an account before login, change password, cancel.

Before authentication a client asks for the fields and registers (``preauth-iq``); this is
offered only where SASL would be (after STARTTLS when ``c2s.require_tls``), can be turned off
(``registration.enabled``) and is limited per client address (``registration.rate_limit``
attempts per ``registration.rate_period`` seconds; ``registration.exempt`` networks are not
counted). After authentication the same namespace changes the password or removes the account:
the user's data goes with it, the event ``user-deleted`` (username) tells the other features,
and every session of the user ends with a ``<not-authorized/>`` stream error.

Error replies never echo the request: it carries a password (XEP-0077 §3.3).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, element, iq_result, sub
from xmpp_server.throttle import Throttle

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

QUERY = "{" + ns.REGISTER + "}query"
_R = "{" + ns.REGISTER + "}"
INSTRUCTIONS = "Choose a username and password to register with this server."


class Register(Module):
    name = "register"
    xeps = (77,)
    features = (ns.REGISTER,)  # XEP-0077 §10; also password change and cancellation

    def setup(self) -> None:
        config = self.host.config.registration
        self.enabled = config.enabled
        self.throttle = Throttle(config.rate_limit, config.rate_period)
        self.on("preauth-iq/" + QUERY, self.preauth)
        for target in ("host", "bare"):  # XEP-0077 §3.3 addresses the server; §3.2 no one
            self.on_iq("get", target, QUERY, self.registered)
            self.on_iq("set", target, QUERY, self.account)
        self.offer(self._feature)

    def _feature(self, session: Session, features: etree._Element) -> None:
        # XEP-0077 §8; negotiation calls providers only once TLS is done where it is required.
        if session.username is None and self.enabled:
            sub(features, "{" + ns.REGISTER_FEATURE + "}register")

    # -- before authentication ----------------------------------------------------------------

    async def preauth(self, stanza: Stanza) -> bool:
        session = stanza.origin
        assert session is not None
        try:
            session.send(await self._preauth(stanza, session))
        except StanzaError as exc:
            session.send(_error(stanza, exc))
        return True

    async def _preauth(self, stanza: Stanza, session: Session) -> etree._Element:
        host = self.host
        if host.config.c2s.require_tls and not session.transport.secure:
            # RFC 6120 §5.3.1 and XEP-0077 §11: no credentials over a plain stream.
            raise StanzaError("not-authorized", "encryption required: use STARTTLS first")
        if stanza.type == "get":
            if not self.enabled:
                # XEP-0077 §3.1: a host without in-band registration MUST answer so.
                raise StanzaError("service-unavailable", "in-band registration is disabled")
            query = element(QUERY)
            sub(query, "instructions", INSTRUCTIONS)
            sub(query, "username")
            sub(query, "password")
            return iq_result(stanza, query)
        if not self.enabled:
            raise StanzaError("not-allowed", "in-band registration is disabled")
        query = stanza.child
        assert query is not None
        if query.find(_R + "remove") is not None:
            raise StanzaError("registration-required", "not registered: log in first")
        raw_name = (query.findtext(_R + "username") or "").strip()
        password = query.findtext(_R + "password") or ""
        if not raw_name or not password:
            # XEP-0077 §3.1: a missing or empty field MUST get not-acceptable.
            raise StanzaError("not-acceptable", "a username and a password are required")
        username = host.accounts.username(raw_name)  # not-acceptable if no valid localpart
        ip = session.transport.peer_ip
        if not host.config.registration.is_exempt(ip):
            # Every valid attempt counts (as Prosody's mod_register_limits), so that probing
            # taken names is limited too; the answer is Prosody's.
            if self.throttle.blocked(ip):
                log.info("registration from %s refused: over the rate limit", ip)
                raise StanzaError("policy-violation", "too many registrations from this "
                                  "address recently; try again later", type="wait")
            self.throttle.failure(ip)
        await host.accounts.create(username, password)  # conflict if taken, atomically
        log.info("registered %s from %s", username, ip)
        await host.events.fire("user-registered", username)
        return iq_result(stanza)

    # -- after authentication -----------------------------------------------------------------

    def _own(self, stanza: Stanza) -> str | None:
        """The requester's username if this is a local user asking about their own account."""
        frm, origin = stanza.frm, stanza.origin
        if frm is None or origin is None or origin.username is None or frm.local is None:
            return None
        if frm.local != origin.username or frm.domain != self.host.domain:
            return None
        to = stanza.to
        if to is not None and to.local is not None and to.bare != frm.bare:
            return None  # another user's account: not ours to answer (service-unavailable)
        return frm.local

    async def registered(self, stanza: Stanza) -> bool:
        username = self._own(stanza)
        if username is None:
            return False
        # XEP-0077 §3.1: an already registered entity gets <registered/> and its data.
        query = element(QUERY)
        sub(query, "registered")
        sub(query, "instructions", "You are registered; send a new password to change it.")
        sub(query, "username", username)
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True

    async def account(self, stanza: Stanza) -> bool:
        username = self._own(stanza)
        if username is None:
            return False
        query = stanza.child
        assert query is not None
        try:
            if query.find(_R + "remove") is not None:
                await self._cancel(stanza, query, username)
            else:
                await self._change_password(stanza, query, username)
        except StanzaError as exc:
            await self.host.router.reply(stanza, _error(stanza, exc))
        return True

    async def _change_password(self, stanza: Stanza, query: etree._Element,
                               username: str) -> None:
        host = self.host
        raw_name = (query.findtext(_R + "username") or "").strip()
        password = query.findtext(_R + "password") or ""
        # XEP-0077 §3.3: incomplete -> bad-request; an empty password MUST NOT be set.
        if not raw_name or not password:
            raise StanzaError("bad-request", "a username and a new password are required")
        if host.accounts.username(raw_name) != username:
            raise StanzaError("bad-request", "the username is not yours")
        if not await host.accounts.set_password(username, password):
            raise StanzaError("registration-required")  # removed meanwhile
        log.info("password changed for %s", username)
        await host.router.reply(stanza, iq_result(stanza))

    async def _cancel(self, stanza: Stanza, query: etree._Element, username: str) -> None:
        """XEP-0077 §3.2: remove the account, then end every session of the user."""
        if any(isinstance(child.tag, str) and child.tag != _R + "remove" for child in query):
            raise StanzaError("bad-request", "<remove/> must be the only child")
        host = self.host
        # Features that must read the user's data (e.g. to unsubscribe contacts) do it now.
        await host.events.fire("user-deleting", username)
        if not await host.accounts.delete(username):
            raise StanzaError("registration-required")  # removed meanwhile
        log.info("account %s removed by its user", username)
        await host.router.reply(stanza, iq_result(stanza))  # the asking session: result first
        for session in host.sessions.of_user(username):
            session.stream_error("not-authorized", "the account was removed")
        await host.events.fire("user-deleted", username)


def _error(stanza: Stanza, error: StanzaError) -> etree._Element:
    """An error reply without the request payload (unlike ``stanza.error_reply``)."""
    el = element("iq", type="error", id=stanza.id)
    if stanza.frm is not None:
        el.set("to", str(stanza.frm))
    if stanza.to is not None:
        el.set("from", str(stanza.to))
    el.append(error.to_element())
    return el
