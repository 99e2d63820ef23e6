"""XEP-0313 message archives between real slixmpp clients: what is archived, queries and RSM
paging, metadata, XEP-0441 preferences, hints, retention, access, shutdown."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from storage.archive import ArchiveEntry
from tests.scenarios.test_messages import STANZA_ID, body_is, close, ping, send
from tests.support.clients import Client, connect
from xmpp_server.server import Server

MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
XDATA = "jabber:x:data"
FWD = "urn:xmpp:forward:0"
HINTS = "urn:xmpp:hints"
_queryids = itertools.count()


@dataclass
class Result:
    id: str
    stamp: str
    message: ET.Element  # the archived stanza

    @property
    def body(self) -> str | None:
        return self.message.findtext("{jabber:client}body")


@dataclass
class Page:
    results: list[Result]
    complete: bool
    first: str | None
    last: str | None

    @property
    def bodies(self) -> list[str | None]:
        return [r.body for r in self.results]


async def online(server: Server, user: str, **kw: Any) -> Client:
    client = await connect(server, user, plugins=("xep_0030", "xep_0203", "xep_0359"), **kw)
    client.send_presence()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.queues["mam"] = queue
    client.register_handler(Callback(
        "mam results", MatchXPath(f"{{jabber:client}}message/{{{MAM}}}result"), queue.put_nowait
    ))
    await ping(client)
    return client


async def query(client: Client, to: str | None = None, rsm: dict[str, str] | None = None,
                flip: bool = False, with_jid: str | None = None,
                **fields: str | list[str]) -> Page:
    """A MAM query; form fields by name (after_id for after-id), RSM children in ``rsm``."""
    iq = client.make_iq_set(ito=to)
    queryid = f"q{next(_queryids)}"
    q = ET.SubElement(iq.xml, f"{{{MAM}}}query", {"queryid": queryid})
    if with_jid is not None:
        fields["with"] = with_jid
    if fields:
        form = ET.SubElement(q, f"{{{XDATA}}}x", {"type": "submit"})
        for var, value in {"FORM_TYPE": MAM, **fields}.items():
            name = var if var == "FORM_TYPE" else var.replace("_", "-")
            field = ET.SubElement(form, f"{{{XDATA}}}field", {"var": name})
            for v in [value] if isinstance(value, str) else value:
                ET.SubElement(field, f"{{{XDATA}}}value").text = v
    if rsm is not None:
        rset = ET.SubElement(q, f"{{{RSM}}}set")
        for name, text in rsm.items():
            ET.SubElement(rset, f"{{{RSM}}}{name}").text = text or None
    if flip:
        ET.SubElement(q, f"{{{MAM}}}flip-page")
    reply = await client.query(iq)
    results = []
    queue = client.queues["mam"]
    while not queue.empty():  # results arrive before the IQ result (§4.3)
        msg = queue.get_nowait()
        result = msg.xml.find(f"{{{MAM}}}result")
        assert result.get("queryid") == queryid
        assert msg["from"] == client.boundjid.bare
        fwd = result.find(f"{{{FWD}}}forwarded")
        results.append(Result(result.get("id"), fwd.find("{urn:xmpp:delay}delay").get("stamp"),
                              fwd.find("{jabber:client}message")))
    fin = reply.xml.find(f"{{{MAM}}}fin")
    assert fin is not None
    in_set = f"{{{RSM}}}set/{{{RSM}}}"
    return Page(results, fin.get("complete") == "true", fin.findtext(in_set + "first"),
                fin.findtext(in_set + "last"))


async def error_of(coro: Any) -> str:
    with pytest.raises(IqError) as info:
        await coro
    return str(info.value.iq["error"]["condition"])


async def iq_get(client: Client, payload: str, to: str | None = None) -> ET.Element:
    iq = client.make_iq_get(ito=to)
    iq.xml.append(ET.Element(f"{{{MAM}}}{payload}"))
    reply = await client.query(iq)
    el = reply.xml.find(f"{{{MAM}}}{payload}")
    assert el is not None
    return el


# -- what is archived ---------------------------------------------------------------------------

async def test_both_directions_archived_under_the_delivered_stanza_id(server):
    alice = await online(server, "alice")
    bob = await online(server, "bob")
    try:
        send(alice, "bob@localhost", "hi bob")
        got = await bob.next("message", body_is("hi bob"))
        send(bob, "alice@localhost/test", "hi alice")
        back = await alice.next("message", body_is("hi alice"))

        mine = await query(alice)
        assert mine.bodies == ["hi bob", "hi alice"] and mine.complete
        out, inc = mine.results
        assert out.message.get("from") == "alice@localhost/test"
        assert out.message.get("to") == "bob@localhost"
        assert inc.message.get("from") == "bob@localhost/test"
        assert inc.id == back["stanza_id"]["id"]  # §3.5: the id the client was given
        assert back["stanza_id"]["by"] == "alice@localhost"
        assert out.id != inc.id and (mine.first, mine.last) == (out.id, inc.id)
        assert not got.xml.findall(f"{STANZA_ID}[@by='alice@localhost']")  # never to the contact

        theirs = await query(bob)
        assert theirs.bodies == ["hi bob", "hi alice"]
        assert theirs.results[0].id == got["stanza_id"]["id"]
        assert (await query(alice, with_jid="bob@localhost")).bodies == ["hi bob", "hi alice"]
        assert (await query(alice, with_jid="bob@localhost/test")).bodies == ["hi alice"]
        assert (await query(alice, with_jid="carol@localhost")).results == []
        stamp = datetime.fromisoformat(inc.stamp)
        assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=1)
    finally:
        await close(alice, bob)


async def test_sent_carbon_carries_the_senders_archive_id(server):
    """§3.5: the sender's other clients learn the id from the carbon, the contact never."""
    phone = await online(server, "alice", resource="phone")
    desk = await online(server, "alice", resource="desk", create=False)
    bob = await online(server, "bob")
    carbons: asyncio.Queue[Any] = asyncio.Queue()
    desk.register_handler(Callback(
        "carbons", MatchXPath("{jabber:client}message/{urn:xmpp:carbons:2}sent"),
        carbons.put_nowait,
    ))
    try:
        enable = desk.make_iq_set()
        enable.xml.append(ET.Element("{urn:xmpp:carbons:2}enable"))
        await desk.query(enable)
        send(phone, "bob@localhost", "copied")
        got = await bob.next("message", body_is("copied"))
        assert [s.get("by") for s in got.xml.findall(STANZA_ID)] == ["bob@localhost"]
        carbon = await asyncio.wait_for(carbons.get(), 5)
        copied = carbon.xml.find(f".//{{{FWD}}}forwarded/{{jabber:client}}message")
        ids = {s.get("by"): s.get("id") for s in copied.findall(STANZA_ID)}
        [archived] = (await query(phone)).results
        assert ids == {"alice@localhost": archived.id}
        assert archived.message.find(STANZA_ID) is None  # not kept in the stored stanza
    finally:
        await close(phone, desk, bob)


async def test_offline_messages_and_messages_to_oneself(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "while you were out")
        send(alice, "alice@localhost", "note to self")
        await alice.next("message", body_is("note to self"))
        await ping(alice)
        assert [r.body for r in (await query(alice)).results] == ["while you were out",
                                                                  "note to self"]  # once each
        bob = await online(server, "bob", create=False)
        stored = await bob.next("message", body_is("while you were out"))
        page = await query(bob)
        assert [r.id for r in page.results] == [stored["stanza_id"]["id"]]
        await bob.close()
    finally:
        await alice.close()


async def test_hints_and_what_is_not_a_conversation(server):
    alice = await online(server, "alice")
    bob = await online(server, "bob")
    try:
        send(alice, "bob@localhost", "secret", extra=[ET.Element(f"{{{HINTS}}}no-store")])
        send(alice, "bob@localhost", "fleeting",
             extra=[ET.Element(f"{{{HINTS}}}no-permanent-store")])
        send(alice, "bob@localhost", "news", type_="headline")
        send(alice, "bob@localhost", None,
             extra=[ET.Element("{http://jabber.org/protocol/chatstates}composing")])
        receipt = ET.Element("{urn:xmpp:receipts}received", {"id": "r1"})
        send(alice, "bob@localhost", None, extra=[ET.Element(f"{{{HINTS}}}store"), receipt])
        await bob.next("message", body_is("news"))
        await ping(alice)
        for client in (alice, bob):
            page = await query(client)
            assert len(page.results) == 1, client  # only the <store/> receipt
            assert page.results[0].message.find("{urn:xmpp:receipts}received") is not None
    finally:
        await close(alice, bob)


# -- queries --------------------------------------------------------------------------------------

async def test_paging_forwards_and_backwards_through_25(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        for i in range(25):
            send(alice, "bob@localhost", f"m{i}")
        want = [f"m{i}" for i in range(25)]
        pages = [await query(alice, rsm={"max": "10"})]
        while not pages[-1].complete:
            pages.append(await query(alice, rsm={"max": "10", "after": pages[-1].last or ""}))
        assert [len(p.results) for p in pages] == [10, 10, 5]
        assert [b for p in pages for b in p.bodies] == want
        # RSM <before/> empty: the last page first, each page in chronological order.
        back = [await query(alice, rsm={"max": "10", "before": ""})]
        while not back[-1].complete:
            back.append(await query(alice, rsm={"max": "10", "before": back[-1].first or ""}))
        assert [p.bodies for p in back] == [want[15:], want[5:15], want[:5]]
        assert [p.complete for p in back] == [False, False, True]
        flipped = await query(alice, rsm={"max": "10", "before": ""}, flip=True)
        assert flipped.bodies == want[15:][::-1] and flipped.first == back[0].first
        default = await query(alice)  # no <max/>: up to page_size (50)
        assert len(default.results) == 25 and default.complete
        assert await error_of(query(alice, rsm={"after": "no-such-id"})) == "item-not-found"
        assert await error_of(query(alice, rsm={"index": "3"})) == "feature-not-implemented"
    finally:
        await alice.close()


async def test_page_size_is_capped(servers):
    server = await servers.start(mam={"page_size": 3, "max_page_size": 4})
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        for i in range(6):
            send(alice, "bob@localhost", f"m{i}")
        assert len((await query(alice)).results) == 3
        page = await query(alice, rsm={"max": "100"})
        assert len(page.results) == 4 and not page.complete
    finally:
        await alice.close()


async def test_time_and_id_filters(server):
    await server.host.accounts.create("alice", "secret")
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    await server.host.storage.archive.append([
        ("alice", ArchiveEntry(f"e{i}", t0 + timedelta(minutes=i), "bob@localhost" if i % 2
                               else "carol@localhost", "in",
                               f"<message xmlns='jabber:client'><body>b{i}</body></message>"))
        for i in range(8)
    ])
    alice = await online(server, "alice", create=False)
    try:
        window = await query(alice, start="2024-05-01T12:02:00Z", end="2024-05-01T12:05:00.000Z")
        assert window.bodies == ["b2", "b3", "b4", "b5"] and window.complete
        assert window.results[0].stamp == "2024-05-01T12:02:00.000Z"
        assert (await query(alice, start="2024-05-01T14:03:30+02:00")).bodies == [
            "b4", "b5", "b6", "b7"]
        assert (await query(alice, after_id="e1", before_id="e4")).bodies == ["b2", "b3"]
        assert (await query(alice, ids=["e6", "e0"])).bodies == ["b0", "b6"]
        mixed = await query(alice, rsm={"max": "2"}, after_id="e0", with_jid="bob@localhost")
        assert mixed.bodies == ["b1", "b3"] and not mixed.complete
        assert await error_of(query(alice, ids=["e1", "nope"])) == "item-not-found"
        assert await error_of(query(alice, before_id="nope")) == "item-not-found"
        assert await error_of(query(alice, start="yesterday")) == "bad-request"
        assert await error_of(query(alice, color="red")) == "feature-not-implemented"
    finally:
        await alice.close()


async def test_form_metadata_and_disco(server):
    alice = await online(server, "alice")
    bob = await online(server, "bob")
    try:
        form = await iq_get(alice, "query")
        fields = {f.get("var"): f.get("type") for f in form.iter(f"{{{XDATA}}}field")}
        assert fields == {"FORM_TYPE": "hidden", "with": "jid-single", "start": "text-single",
                          "end": "text-single", "before-id": "text-single",
                          "after-id": "text-single", "ids": "list-multi"}
        assert form.find(".//{http://jabber.org/protocol/xdata-validate}open") is not None

        empty = await iq_get(alice, "metadata")
        assert list(empty) == []
        for i in range(3):
            send(alice, "bob@localhost", f"m{i}")
        await bob.next("message", body_is("m2"))
        page = await query(alice)
        meta = await iq_get(alice, "metadata")
        start, end = meta.find(f"{{{MAM}}}start"), meta.find(f"{{{MAM}}}end")
        assert start is not None and end is not None
        assert start.get("id") == page.results[0].id
        assert end.get("id") == page.results[-1].id
        assert end.get("timestamp") == page.results[-1].stamp

        info = await alice["xep_0030"].get_info(jid="alice@localhost")
        features = info["disco_info"]["features"]
        assert MAM in features and MAM + "#extended" in features
    finally:
        await close(alice, bob)


async def test_only_the_owner_reads_an_archive(server):
    alice = await online(server, "alice")
    bob = await online(server, "bob")
    try:
        send(alice, "bob@localhost", "private")
        await bob.next("message", body_is("private"))
        assert await error_of(query(bob, to="alice@localhost")) == "forbidden"
        assert await error_of(iq_get(bob, "metadata", to="alice@localhost")) == "forbidden"
        assert await error_of(iq_get(bob, "prefs", to="alice@localhost")) == "forbidden"
        own = await query(alice, to="alice@localhost")  # addressed to oneself explicitly
        assert own.bodies == ["private"]
    finally:
        await close(alice, bob)


# -- preferences (XEP-0441) ----------------------------------------------------------------------

async def set_prefs(client: Client, default: str, always: tuple[str, ...] = (),
                    never: tuple[str, ...] = ()) -> ET.Element:
    iq = client.make_iq_set()
    prefs = ET.SubElement(iq.xml, f"{{{MAM}}}prefs", {"default": default})
    for tag, jids in (("always", always), ("never", never)):
        parent = ET.SubElement(prefs, f"{{{MAM}}}{tag}")
        for jid in jids:
            ET.SubElement(parent, f"{{{MAM}}}jid").text = jid
    reply = await client.query(iq)
    el = reply.xml.find(f"{{{MAM}}}prefs")
    assert el is not None
    return el


async def test_prefs_never_always_and_roster(server):
    for user in ("bob", "carol"):
        await server.host.accounts.create(user, "secret")
    alice = await online(server, "alice")
    try:
        got = await iq_get(alice, "prefs")
        assert got.get("default") == "always"
        assert got.find(f"{{{MAM}}}always") is not None and got.find(f"{{{MAM}}}never") is not None

        reply = await set_prefs(alice, "never", always=("carol@localhost",))
        assert [j.text for j in reply.iter(f"{{{MAM}}}jid")] == ["carol@localhost"]
        send(alice, "bob@localhost", "not kept")
        send(alice, "carol@localhost", "kept: always")

        await set_prefs(alice, "roster", never=("carol@localhost",))
        send(alice, "bob@localhost", "not kept: no contact")
        send(alice, "carol@localhost", "not kept: never")
        # Preferences apply when the writer stores a message (a few ms later): let it catch up
        # before the roster changes. (A preference change does that by itself.)
        await query(alice)
        added = alice.update_roster(JID("bob@localhost"))
        assert added is not None
        await added
        send(alice, "bob@localhost", "kept: contact")

        got = await iq_get(alice, "prefs")
        assert got.get("default") == "roster"
        assert [j.text for j in got.iter(f"{{{MAM}}}jid")] == ["carol@localhost"]
        assert (await query(alice)).bodies == ["kept: always", "kept: contact"]
        assert await server.host.storage.archive.count("bob") == 3  # bob's own prefs: always
        assert await error_of(set_prefs(alice, "sometimes")) == "bad-request"
    finally:
        await alice.close()


# -- retention and shutdown ------------------------------------------------------------------------

async def test_retention_sweep_deletes_old_messages(servers):
    server = await servers.start(mam={"retention": 3600, "cleanup_interval": 0.05})
    await server.host.accounts.create("alice", "secret")
    old = datetime.now(UTC) - timedelta(hours=2)
    await server.host.storage.archive.append([
        ("alice", ArchiveEntry(f"old{i}", old + timedelta(seconds=i), "bob@localhost", "in",
                               "<message xmlns='jabber:client'><body>old</body></message>"))
        for i in range(3)
    ])
    alice = await online(server, "alice", create=False)
    mam = server.host.modules["mam"]
    swept = asyncio.Event()
    expire = mam.expire

    async def expire_and_tell() -> int:
        removed: int = await expire()
        swept.set()
        return removed

    mam.expire = expire_and_tell  # the module's sweeper calls it every 0.05 s
    try:
        send(alice, "bob@localhost", "new")
        await ping(alice)
        await asyncio.wait_for(swept.wait(), 5)  # a sweep that began after the old rows existed
        assert (await query(alice)).bodies == ["new"]
    finally:
        await alice.close()


async def test_stop_writes_what_was_queued(servers, db_url):
    server = await servers.start()
    await server.host.accounts.create("alice", "secret")
    mam = server.host.modules["mam"]
    now = datetime.now(UTC)
    for i in range(20):  # queued, with no chance for the writer to run before stop()
        mam.writer.add("alice", ArchiveEntry(f"q{i}", now, "bob@localhost", "out", "<m/>"))
    await servers.stop(server)
    again = await servers.start()
    assert await again.host.storage.archive.count("alice") == 20
