"""XEP-0357 §7: sending publishes at a measured pace and acting on the app server's answers.

Pace: one publish per registration per ``push.min_interval`` seconds. The first message after
a quiet spell is pushed at once; what arrives within the interval is pushed once, when it
ends, with the summary as it is then (count and last sender), so a flood costs the app server
one publish per interval.

Answers (§7.1 "Publish Errors"; Prosody's handling as the tie-breaker):

=====================================================  ====================================
answer                                                 the registration
=====================================================  ====================================
result                                                 kept; its error count restarts
error of type wait; remote-server-not-found/-timeout   kept ("recoverable or transient"),
(our server could not reach it); no answer in time     unless ``push.max_errors`` in a row
any other error (item-not-found, not-authorized...)    removed ("SHOULD consider [it]
                                                       disabled")
=====================================================  ====================================

From "server-stopping" on, publishes go out without waiting for answers (shutdown does not
wait for app servers), and those still waiting for their interval are dropped: the messages
are in offline storage, and the next one after the restart is pushed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from storage.push import PushRegistration
from xmpp_server import namespaces as ns
from xmpp_server.errors import condition_of
from xmpp_server.modules.push.publish import Summary, publish_iq

if TYPE_CHECKING:
    from xmpp_server.host import Host

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (service JID, node)
Incoming = tuple[str | None, str | None]  # (sender, body) of an important message

_TIMEOUT = 30.0  # seconds an app server has to answer a publish
_ERROR = "{" + ns.CLIENT + "}error"
_UNREACHABLE = frozenset(("remote-server-not-found", "remote-server-timeout"))


def key(registration: PushRegistration) -> Key:
    return registration.jid, registration.node


@dataclass(eq=False)
class _Slot:
    """The pace of one registration."""

    registration: PushRegistration
    last: float = -math.inf  # loop time of the last publish
    timer: asyncio.TimerHandle | None = None  # a publish is due when it fires
    errors: int = 0  # transient failures in a row


@dataclass(eq=False)
class _User:
    summary: Summary = field(default_factory=Summary)
    slots: dict[Key, _Slot] = field(default_factory=dict)


class Sender:
    def __init__(self, host: Host) -> None:
        self.host = host
        self._users: dict[str, _User] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def notify(self, username: str, targets: Sequence[PushRegistration],
               messages: Iterable[Incoming]) -> None:
        """Count the messages into the user's summary and push it to each target."""
        user = self._users.get(username)
        if user is None:
            user = self._users[username] = _User()
        for sender, body in messages:
            user.summary.add(sender, body)
        interval = self.host.config.push.min_interval
        now = asyncio.get_running_loop().time()
        for registration in targets:
            slot = user.slots.get(key(registration))
            if slot is None:
                slot = user.slots[key(registration)] = _Slot(registration)
            slot.registration = registration  # the newest options
            if slot.timer is not None:
                continue  # due already: it will carry this message too
            wait = slot.last + interval - now
            if wait <= 0:
                self._send(username, user, slot)
            elif not self._stopping:
                slot.timer = asyncio.get_running_loop().call_later(
                    wait, self._due, username, user, slot)

    def back(self, username: str) -> None:
        """The user is online again: the summary starts over and nothing more is due."""
        user = self._users.pop(username, None)
        if user is not None:
            for slot in user.slots.values():
                _cancel(slot)

    def forget(self, username: str, keys: Iterable[Key]) -> None:
        """Registrations disabled or enabled anew: their pace and error count start over."""
        user = self._users.get(username)
        if user is None:
            return
        for k in keys:
            slot = user.slots.pop(k, None)
            if slot is not None:
                _cancel(slot)

    def stopping(self, _: object = None) -> None:
        """The server stops: stop waiting for answers and for intervals."""
        self._stopping = True
        for user in self._users.values():
            for slot in user.slots.values():
                _cancel(slot)
        for task in list(self._tasks):
            task.cancel()

    def stop(self) -> None:
        self.stopping()
        self._users.clear()

    # -- publishing ---------------------------------------------------------------------------

    def _due(self, username: str, user: _User, slot: _Slot) -> None:
        slot.timer = None
        if self._users.get(username) is user and user.slots.get(key(slot.registration)) is slot:
            self._send(username, user, slot)

    def _send(self, username: str, user: _User, slot: _Slot) -> None:
        slot.last = asyncio.get_running_loop().time()
        push = self.host.config.push
        iq = publish_iq(self.host.domain, slot.registration, user.summary, push)
        task = self.host.spawn(self._publish(username, slot, iq), name="push-publish")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, username: str, slot: _Slot, iq: etree._Element) -> None:
        router = self.host.router
        if self._stopping:
            iq.set("id", secrets.token_hex(8))
            await router.send(iq)
            return
        registration = slot.registration
        try:
            reply: etree._Element | None = await router.iq(iq, timeout=_TIMEOUT)
        except TimeoutError:
            reply = None
        if reply is not None and reply.get("type") == "result":
            slot.errors = 0
            return
        condition, transient = _failure(reply)
        if transient:
            slot.errors += 1
            if slot.errors < self.host.config.push.max_errors:
                log.info("push to %s (%s) of %s failed (%s), %d in a row", registration.jid,
                         registration.node, username, condition, slot.errors)
                return
        log.info("push registration %s (%s) of %s removed after %s", registration.jid,
                 registration.node, username, condition)
        user = self._users.get(username)
        if user is not None and user.slots.get(key(registration)) is slot:
            self.forget(username, [key(registration)])
        await self.host.storage.push.remove(username, registration)  # unless enabled anew


def _failure(reply: etree._Element | None) -> tuple[str, bool]:
    """The error condition of a failed publish, and whether it may pass (§7.1)."""
    if reply is None:
        return "no answer", True
    error = reply.find(_ERROR)
    if error is None:
        return "an answer that is no result", False
    condition = condition_of(error)
    return condition, error.get("type") == "wait" or condition in _UNREACHABLE


def _cancel(slot: _Slot) -> None:
    if slot.timer is not None:
        slot.timer.cancel()
        slot.timer = None
