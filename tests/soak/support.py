"""The server as a real subprocess (so it can be kill -9'd) and a light XEP-0198 client.

``ServerProcess`` runs ``python3 -m xmpp_server serve`` with ``XMPPD_*`` overrides on a free
port and a data directory of its own; ``kill9()`` and ``start()`` again restart it on the same
data. ``SmClient`` is a raw asyncio client for thousands of messages: SASL PLAIN over plain TCP
(``c2s.require_tls = false``), bind, XEP-0198 with resumption; it counts and acknowledges every
stanza it receives (answers <r/>, and sends <a/> after each read), and hands each chat message
to a callback with its body and the XEP-0359 stanza-id the server stamped for the recipient.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from storage import open_storage
from tests.support.server import env_for, free_port
from xmpp_server.accounts import Accounts

ROOT = Path(__file__).resolve().parents[2]
C = "{jabber:client}"
STREAM = "{http://etherx.jabber.org/streams}"
SM_NS = "urn:xmpp:sm:3"
SM = "{" + SM_NS + "}"
SASL = "{urn:ietf:params:xml:ns:xmpp-sasl}"
SID = "{urn:xmpp:sid:0}stanza-id"
MAM_NS = "urn:xmpp:mam:2"
MAM = "{" + MAM_NS + "}"
FORWARD = "{urn:xmpp:forward:0}forwarded"
STANZAS = (C + "message", C + "presence", C + "iq")
TIMEOUT = 20.0
MOD = 2**32


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# -- the server --------------------------------------------------------------------------------


class ServerProcess:
    """``xmppd serve`` in a subprocess; ``sections`` are config overrides as for ``env_for``."""

    def __init__(self, tmp_path: Path, db_url: str, domain: str = "localhost",
                 **sections: dict[str, Any]) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        c2s = {"port": self.port, "direct_tls_port": 0, "require_tls": False,
               **sections.pop("c2s", {})}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
        sections.update(c2s=c2s, http={"enabled": False}, server={"log_level": "warning"})
        self.env.update(env_for(tmp_path / "data", db_url, domain, **sections))
        self.env["PYTHONPATH"] = str(ROOT)
        self.db_url = db_url
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.started_at = 0.0  # loop time of the last start
        self.ready = False  # listening since started_at

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def create_accounts(self, names: list[str], password: str = "secret") -> None:
        """Accounts made before the server starts, as ``xmppd user add`` makes them."""
        storage = await open_storage(self.db_url)
        try:
            accounts = Accounts(storage, 4096)
            for name in names:
                await accounts.create(name, password)
        finally:
            await storage.close()

    async def start(self) -> None:
        self.ready = False
        self.starts += 1
        log = (self.tmp_path / f"server-{self.starts}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "xmpp_server", "serve", env=self.env, cwd=ROOT,
            stdout=log, stderr=asyncio.subprocess.STDOUT)
        log.close()
        async with asyncio.timeout(60):
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"server exited: {self.log_tail()}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                self.started_at = asyncio.get_running_loop().time()
                self.ready = True
                return

    async def kill9(self) -> None:
        assert self.proc is not None
        self.ready = False
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, graceful: bool = True) -> None:
        """SIGTERM and wait (``graceful``), else SIGKILL."""
        if self.proc is None or self.proc.returncode is not None:
            return
        if not graceful:
            await self.kill9()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def rss_mb(self) -> float:
        """The server's resident set (VmRSS of /proc/PID/status), in MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def log_text(self, start: int) -> str:
        """What the server wrote (its log) in its ``start``-th life."""
        path = self.tmp_path / f"server-{start}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text(self.starts).splitlines()[-lines:])


# -- the client --------------------------------------------------------------------------------


@dataclass
class Received:
    """A chat message as a client got it."""

    body: str
    stanza_id: str | None  # the server's XEP-0359 id for the recipient (by = bare JID)
    frm: str


@dataclass
class SmState:
    """What outlives one connection for XEP-0198 resumption."""

    resume_id: str | None = None
    handled: int = 0  # stanzas received since <enable/>: our 'h'
    sent: int = 0  # stanzas sent since <enable/>
    acked: int = 0  # the server's last 'h' for what we sent
    log: list[str] = field(default_factory=list)  # body (or "") of each stanza sent, in order


class Closed(ConnectionError):
    pass


class SmClient:
    """One connection of ``user``; ``on_message`` gets each chat message received."""

    _ids = itertools.count()

    def __init__(self, port: int, user: str, resource: str = "soak", password: str = "secret",
                 on_message: Callable[[Received], None] | None = None,
                 domain: str = "localhost") -> None:
        self.port = port
        self.user = user
        self.bare = f"{user}@{domain}"
        self.resource = resource
        self.password = password
        self.domain = domain
        self.on_message = on_message or (lambda _m: None)
        self.sm = SmState()
        self.jid: str | None = None  # the full JID bound
        self.stream_error: str | None = None  # "condition: text" of a stream error received
        self.closed = asyncio.Event()
        self.resumed = False
        self.bounced: list[str] = []  # bodies of our messages that came back as errors
        self._control: deque[etree._Element] = deque()
        self._arrived = asyncio.Event()
        self._iqs: dict[str, asyncio.Future[etree._Element]] = {}
        self._mam: dict[str, list[etree._Element]] = {}
        self._acked = asyncio.Event()
        self._sm_on = False
        self._pump: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()  # the previous connection's reader is done with
            with contextlib.suppress(BaseException):
                await self._pump
        self.closed = asyncio.Event()
        self.stream_error = None
        self._control.clear()
        self._iqs.clear()
        self._mam.clear()
        self._sm_on = False
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._new_parser()
        self._pump = asyncio.create_task(self._read(reader), name=f"pump-{self.user}")

    def _new_parser(self) -> None:
        self._parser = etree.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root: etree._Element | None = None

    def write(self, data: str) -> None:
        if self._writer is None or self._writer.is_closing():
            raise Closed(self.stream_error or "connection closed")
        self._writer.write(data.encode())

    async def drain(self) -> None:
        if self._writer is None or self._writer.is_closing():
            raise Closed(self.stream_error or "connection closed")
        await self._writer.drain()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self._parser.feed(data)
                handled = self.sm.handled
                restart = False
                for event, el in self._parser.read_events():
                    if event == "start":
                        self._depth += 1
                        if self._depth == 1:
                            self._root = el
                        continue
                    self._depth -= 1
                    if self._depth == 1:
                        if self._root is not None:
                            self._root.remove(el)  # keep memory flat
                        restart = self._element(el) or restart
                    elif self._depth == 0:
                        break  # the server closed its stream
                if restart:
                    self._new_parser()
                if self._sm_on and self.sm.handled != handled and not self.closed.is_set():
                    self.write(f"<a xmlns='{SM_NS}' h='{self.sm.handled}'/>")
        except (ConnectionError, OSError):
            pass
        except Exception as exc:  # a parse error is a failure of the server
            self.stream_error = self.stream_error or f"unreadable stream: {exc!r}"
        finally:
            self._closed()

    def _closed(self) -> None:
        self.closed.set()
        self._arrived.set()
        self._acked.set()
        for fut in self._iqs.values():
            if not fut.done():
                fut.set_exception(Closed(self.stream_error or "connection closed"))
        if self._writer is not None:
            self._writer.close()

    def _element(self, el: etree._Element) -> bool:
        """Handle one top-level element; True when the stream restarts (SASL success)."""
        tag = el.tag
        if tag in STANZAS:
            if self._sm_on:
                self.sm.handled = (self.sm.handled + 1) % MOD
            if tag == C + "message":
                self._message(el)
            elif tag == C + "iq" and el.get("type") in ("result", "error"):
                fut = self._iqs.pop(el.get("id") or "", None)
                if fut is not None and not fut.done():
                    fut.set_result(el)
            return False
        if tag in (SM + "enabled", SM + "resumed"):
            # What follows in the same read is already counted (a resumed session's replay).
            self._sm_on = True
            if tag == SM + "enabled":
                self.sm.handled = 0
                self.sm.resume_id = el.get("id")
            else:
                self._resumed_at(int(el.get("h") or 0))
        elif tag == SM + "r":
            self.write(f"<a xmlns='{SM_NS}' h='{self.sm.handled}'/>")
            return False
        if tag == SM + "a":
            self.sm.acked = int(el.get("h") or 0)
            self._acked.set()
            return False
        if tag == STREAM + "error":
            cond = next((etree.QName(c).localname for c in el
                         if etree.QName(c).localname != "text"), "?")
            text = next((c.text for c in el if etree.QName(c).localname == "text"), "")
            self.stream_error = f"{cond}: {text}"
            return False
        self._control.append(el)
        self._arrived.set()
        return tag == SASL + "success"

    def _message(self, el: etree._Element) -> None:
        result = el.find(MAM + "result")
        if result is not None:
            self._mam.setdefault(result.get("queryid") or "", []).append(result)
            return
        body = el.findtext(C + "body")
        if body is None:
            return
        if el.get("type") == "error":
            self.bounced.append(body)
            return
        sid = next((s.get("id") for s in el.iterchildren(SID) if s.get("by") == self.bare),
                   None)
        self.on_message(Received(body, sid, el.get("from") or ""))

    async def expect(self, pred: Callable[[etree._Element], bool],
                     timeout: float = TIMEOUT) -> etree._Element:
        async with asyncio.timeout(timeout):
            while True:
                for el in self._control:
                    if pred(el):
                        self._control.remove(el)
                        return el
                if self.closed.is_set():
                    raise Closed(self.stream_error or "connection closed")
                self._arrived.clear()
                await self._arrived.wait()

    def _header(self) -> str:
        return (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                f"xmlns:stream='http://etherx.jabber.org/streams' to='{self.domain}' "
                f"version='1.0'>")

    # -- login --------------------------------------------------------------------------------

    async def login(self, *, sm: bool = True, resume: bool = False,
                    presence: bool = True) -> bool:
        """Authenticate, then resume the previous session (``resume``, when it has an id) or
        bind ``self.resource`` and enable XEP-0198 (``sm``). Returns whether it resumed; a
        failed resumption falls back to a new session."""
        await self.connect()
        self.write(self._header())
        await self.expect(lambda e: e.tag == STREAM + "features")
        token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self.write(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                   f"{token}</auth>")
        el = await self.expect(lambda e: e.tag in (SASL + "success", SASL + "failure"))
        if el.tag != SASL + "success":
            raise Closed(f"authentication failed: {etree.tostring(el)!r}")
        self.write(self._header())
        await self.expect(lambda e: e.tag == STREAM + "features")
        if resume and self.sm.resume_id:
            self.write(f"<resume xmlns='{SM_NS}' previd='{self.sm.resume_id}' "
                       f"h='{self.sm.handled}'/>")
            el = await self.expect(lambda e: e.tag in (SM + "resumed", SM + "failed"))
            if el.tag == SM + "resumed":
                self.resumed = True
                return True
        self.sm = SmState()
        self._sm_on = False
        self.resumed = False
        self.write(f"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                   f"<resource>{self.resource}</resource></bind></iq>")
        el = await self.expect_iq("bind")
        if el.get("type") != "result":
            raise Closed(f"bind refused: {etree.tostring(el)!r}")
        self.jid = el.findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid")
        if sm:
            self.write(f"<enable xmlns='{SM_NS}' resume='true'/>")
            el = await self.expect(lambda e: e.tag in (SM + "enabled", SM + "failed"))
            if el.tag != SM + "enabled":
                raise Closed(f"stream management refused: {etree.tostring(el)!r}")
        if presence:
            self.send_stanza("<presence/>")
        return False

    async def expect_iq(self, iq_id: str, timeout: float = TIMEOUT) -> etree._Element:
        fut = self._iqs.get(iq_id)
        if fut is None:
            fut = self._iqs[iq_id] = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(timeout):
            return await fut

    def _resumed_at(self, h: int) -> None:
        """<resumed h/>: what the server did not handle is gone (it is not re-sent here)."""
        done = min(h, len(self.sm.log))
        del self.sm.log[done:]
        self.sm.sent = done
        self.sm.acked = done
        self._acked.set()

    # -- sending ------------------------------------------------------------------------------

    def send_stanza(self, xml: str, body: str = "") -> None:
        """Write a stanza, counted for XEP-0198 ('body' names it in ``sm.log``)."""
        if xml.startswith("<iq"):
            iq_id = xml.split("id='", 1)[1].split("'", 1)[0]
            self._iqs.setdefault(iq_id, asyncio.get_running_loop().create_future())
        self.write(xml)
        if self._sm_on:
            self.sm.sent += 1
            self.sm.log.append(body)

    def send_chat(self, to: str, body: str) -> None:
        self.send_stanza(f"<message to='{to}' type='chat' id='m{next(self._ids)}'>"
                         f"<body>{body}</body></message>", body)

    def request_ack(self) -> None:
        self.write(f"<r xmlns='{SM_NS}'/>")

    def acked_bodies(self) -> list[str]:
        """The bodies of the messages the server acknowledged on this session."""
        return [b for b in self.sm.log[: self.sm.acked] if b]

    def unacked(self) -> int:
        return (self.sm.sent - self.sm.acked) % MOD

    async def wait_acked(self, most_unacked: int, timeout: float = TIMEOUT) -> None:
        """Ask for acks until at most ``most_unacked`` stanzas wait for one."""
        async with asyncio.timeout(timeout):
            while self.unacked() > most_unacked:
                if self.closed.is_set():
                    raise Closed(self.stream_error or "connection closed")
                self._acked.clear()
                self.request_ack()
                await self.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._acked.wait(), 1.0)

    # -- queries ------------------------------------------------------------------------------

    async def archive(self, page: int = 250, most: int = 10**9) -> list[tuple[str, str]]:
        """Every (archive id, body) of this user's XEP-0313 archive, oldest first; the pages
        stop once ``most`` rows were read."""
        out: list[tuple[str, str]] = []
        after = ""
        n = 0
        while True:
            n += 1
            qid = f"q{next(self._ids)}"
            rsm = f"<max>{page}</max>" + (f"<after>{after}</after>" if after else "")
            self.send_stanza(f"<iq type='set' id='{qid}'><query xmlns='{MAM_NS}' queryid='{qid}'>"
                             f"<set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set>"
                             f"</query></iq>")
            await self.drain()
            iq = await self.expect_iq(qid, timeout=60)
            if iq.get("type") != "result":
                raise AssertionError(f"archive query failed: {etree.tostring(iq)!r}")
            for result in self._mam.pop(qid, []):
                msg = result.find(f"{FORWARD}/{C}message")
                body = msg.findtext(C + "body") if msg is not None else None
                out.append((result.get("id") or "", body or ""))
            fin = iq.find(MAM + "fin")
            last = fin.findtext("{http://jabber.org/protocol/rsm}set/"
                                "{http://jabber.org/protocol/rsm}last") if fin is not None else None
            if (fin is None or fin.get("complete") == "true" or not last
                    or len(out) >= most or n > 10000):
                return out
            after = last

    async def ping(self, timeout: float = TIMEOUT) -> None:
        """A round trip to the server (XEP-0199): what it sent before the answer has arrived."""
        pid = f"p{next(self._ids)}"
        self.send_stanza(f"<iq type='get' id='{pid}'><ping xmlns='urn:xmpp:ping'/></iq>")
        await self.drain()
        await self.expect_iq(pid, timeout)

    # -- leaving ------------------------------------------------------------------------------

    def abort(self) -> None:
        """The network goes away: no closing tag (the session may wait for resumption)."""
        if self._writer is not None:
            self._writer.transport.abort()
        self._closed()

    async def close(self) -> None:
        """A clean close: </stream:stream>, then wait for the server's."""
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                self._writer.write(b"</stream:stream>")
                await self._writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), 5)
        self.abort()
        if self._pump is not None:
            with contextlib.suppress(BaseException):
                await self._pump
