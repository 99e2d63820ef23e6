"""XEP-0313 on rooms (RSM paging, who may read), XEP-0425 moderation, XEP-0410 self-ping."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa

from tests.scenarios.muc.helpers import (
    DATA,
    DELAY,
    MAM,
    OCCUPANT_ID,
    RSM,
    SID,
    admin_iq,
    client,
    clients,
    create,
    entered,
    groupchat,
    iq_error,
    join,
    say,
    send_join,
    statuses,
    sub,
)

FORWARD = "urn:xmpp:forward:0"
MODERATE = "urn:xmpp:message-moderate:1"
RETRACT = "urn:xmpp:message-retract:1"


async def mam(c: Any, room: str, *, max_: int | None = None, after: str | None = None,
              before: str | None = None, fields: dict[str, str] | None = None,
              queryid: str = "q1") -> tuple[list[Any], Any]:
    """Query a room's archive: (the result messages, the <fin/>)."""
    iq = c.make_iq_set(ito=room)
    query = sub(iq.xml, f"{{{MAM}}}query", queryid=queryid)
    if fields:
        x = sub(query, f"{{{DATA}}}x", type="submit")
        ft = sub(x, f"{{{DATA}}}field", var="FORM_TYPE", type="hidden")
        sub(ft, f"{{{DATA}}}value", MAM)
        for var, value in fields.items():
            sub(sub(x, f"{{{DATA}}}field", var=var), f"{{{DATA}}}value", value)
    if max_ is not None or after is not None or before is not None:
        rsm = sub(query, f"{{{RSM}}}set")
        if max_ is not None:
            sub(rsm, f"{{{RSM}}}max", str(max_))
        if after is not None:
            sub(rsm, f"{{{RSM}}}after", after)
        if before is not None:
            sub(rsm, f"{{{RSM}}}before", before or None)
    result = await c.query(iq)
    fin = result.xml.find(f"{{{MAM}}}fin")
    results = []
    while not c.queues["stanza"].empty():
        m = c.queues["stanza"].get_nowait()
        r = m.xml.find(f"{{{MAM}}}result")
        if r is not None and r.get("queryid") == queryid:
            results.append(r)
    return results, fin


def bodies(results: list[Any]) -> list[str]:
    return [r.findtext(f"{{{FORWARD}}}forwarded/{{jabber:client}}message/{{jabber:client}}body")
            for r in results]


async def test_archive_paging(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "log", "Alice")
    for i in range(7):
        say(alice, room, f"m{i}")
    last = await groupchat(alice, "m6")
    await entered(bob, room, "Bob")
    results, fin = await mam(bob, room)
    assert bodies(results) == [f"m{i}" for i in range(7)]
    assert fin.get("complete") == "true"
    assert fin.findtext(f"{{{RSM}}}set/{{{RSM}}}count") == "7"
    first = results[0]
    fwd = first.find(f"{{{FORWARD}}}forwarded")
    assert fwd.find(f"{{{DELAY}}}delay") is not None
    msg = fwd.find("{jabber:client}message")
    assert msg.get("from") == f"{room}/Alice" and msg.get("type") == "groupchat"
    assert msg.find(f"{{{OCCUPANT_ID}}}occupant-id") is not None
    # the result id is the stanza-id occupants saw (XEP-0359)
    assert results[-1].get("id") == last.xml.find(f"{{{SID}}}stanza-id").get("id")

    page1, fin1 = await mam(bob, room, max_=3)
    assert bodies(page1) == ["m0", "m1", "m2"] and fin1.get("complete") is None
    after = fin1.findtext(f"{{{RSM}}}set/{{{RSM}}}last")
    page2, _ = await mam(bob, room, max_=3, after=after)
    assert bodies(page2) == ["m3", "m4", "m5"]
    # XEP-0059 §2.5: <before/> empty is the last page, then page backwards
    tail, fin_tail = await mam(bob, room, max_=2, before="")
    assert bodies(tail) == ["m5", "m6"] and fin_tail.get("complete") is None
    earlier, _ = await mam(bob, room, max_=2, before=tail[0].get("id"))
    assert bodies(earlier) == ["m3", "m4"]
    # filters: one occupant's messages; a time window; unknown ids
    none, _ = await mam(bob, room, fields={"with": f"{room}/Bob"})
    assert none == []
    future, _ = await mam(bob, room, fields={"start": "2999-01-01T00:00:00Z"})
    assert future == []
    assert await iq_error(mam(bob, room, after="no-such-id")) == "item-not-found"
    assert await iq_error(mam(bob, room, fields={"start": "yesterday"})) == "bad-request"
    # real JIDs are not for a participant of a semi-anonymous room to filter by
    assert await iq_error(mam(bob, room, fields={"with": "alice@localhost"})) \
        == "forbidden"
    mine, _ = await mam(alice, room, fields={"with": "alice@localhost"})
    assert len(mine) == 7


async def test_malformed_page_size_is_bad_request(server):
    alice = await client(server, "alice")
    room = await create(alice, "lounge", "Alice")
    for text in ("\u00b2", "\u0661", "1_0", "", "-1"):
        iq = alice.make_iq_set(ito=room)
        sub(sub(sub(iq.xml, f"{{{MAM}}}query"), f"{{{RSM}}}set"), f"{{{RSM}}}max", text)
        assert await iq_error(alice.query(iq)) == "bad-request", text
    results, fin = await mam(alice, room, max_=5)
    assert results == [] and fin is not None


async def rename_table(server: Any, old: str, new: str) -> None:
    """Database trouble, for real: the statements of the archive writer fail while the
    table is under another name."""
    async with server.host.storage._engine.begin() as conn:
        await conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_archive_survives_database_trouble(server):
    alice = await client(server, "alice")
    room = await create(alice, "log", "Alice")
    await rename_table(server, "muc_archive", "muc_archive_away")
    for i in range(3):
        say(alice, room, f"m{i}")
    await groupchat(alice, "m2")
    await asyncio.sleep(1.5)  # the writer fails again and again meanwhile
    await rename_table(server, "muc_archive_away", "muc_archive")
    results, _ = await mam(alice, room)  # waits for the writer's next attempt
    assert bodies(results) == ["m0", "m1", "m2"]


async def test_archive_gives_up_at_shutdown_and_says_so(servers, caplog):
    server = await servers.start()
    alice = await client(server, "alice")
    room = await create(alice, "log", "Alice")
    await rename_table(server, "muc_archive", "muc_archive_away")
    say(alice, room, "lost")
    await groupchat(alice, "lost")
    await alice.close()
    with caplog.at_level(logging.ERROR, logger="xmpp_server.modules.muc.archive"):
        await servers.stop(server)
    assert any("gave up on 1 rows" in r.getMessage() for r in caplog.records)


async def test_who_may_read_the_archive(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "club", "Alice", membersonly="1")
    say(alice, room, "members only")
    await groupchat(alice, "members only")
    assert await iq_error(mam(bob, room)) == "forbidden"  # not a member
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "member"},
                                 {"jid": "carol@localhost", "affiliation": "outcast"}])
    results, _ = await mam(bob, room)  # a member reads without being in the room
    assert bodies(results) == ["members only"]
    assert await iq_error(mam(carol, room)) == "forbidden"
    open_room = await create(alice, "open", "Alice")
    say(alice, open_room, "public")
    await groupchat(alice, "public")
    results, _ = await mam(carol, open_room)  # an open room: anyone not banned
    assert bodies(results) == ["public"]


async def test_archiving_can_be_turned_off(server):
    alice = await client(server, "alice")
    room = await create(alice, "quiet", "Alice", enablearchiving="0")
    say(alice, room, "off the record")
    await groupchat(alice, "off the record")
    results, fin = await mam(alice, room)
    assert results == [] and fin.findtext(f"{{{RSM}}}set/{{{RSM}}}count") == "0"


async def test_moderator_retracts_a_message(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    say(bob, room, "something rude")
    msg = await groupchat(alice, "something rude")
    sid = msg.xml.find(f"{{{SID}}}stanza-id").get("id")

    def moderate(c: Any, target: str) -> Any:
        iq = c.make_iq_set(ito=room)
        req = sub(iq.xml, f"{{{MODERATE}}}moderate", id=target)
        sub(req, f"{{{RETRACT}}}retract")
        sub(req, f"{{{MODERATE}}}reason", "Be nice")
        return c.query(iq)

    assert await iq_error(moderate(bob, sid)) == "forbidden"  # not a moderator
    assert await iq_error(moderate(alice, "nope")) == "item-not-found"
    await moderate(alice, sid)
    notice = await bob.next("stanza", lambda m: m.xml.find(f"{{{RETRACT}}}retract")
                            is not None)
    retract = notice.xml.find(f"{{{RETRACT}}}retract")
    assert str(notice["from"]) == room and retract.get("id") == sid
    moderated = retract.find(f"{{{MODERATE}}}moderated")
    assert moderated.get("by") == f"{room}/Alice"
    assert retract.findtext(f"{{{RETRACT}}}reason") == "Be nice"
    # the archive keeps a tombstone in its place (§5)
    results, _ = await mam(carol, room)
    tomb = results[0].find(f"{{{FORWARD}}}forwarded/{{jabber:client}}message")
    assert results[0].get("id") == sid
    assert tomb.find("{jabber:client}body") is None
    assert tomb.find(f"{{{RETRACT}}}retracted") is not None
    assert tomb.get("from") == f"{room}/Bob"
    # and so does the history of whoever enters now
    send_join(carol, room, "Carol")
    await carol.next("presence", lambda p: "110" in statuses(p))
    history = await carol.next("stanza")
    assert history.xml.find(f"{{{RETRACT}}}retracted") is not None
    assert history.xml.find("{jabber:client}body") is None


async def test_self_ping_and_private_iq(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")

    def ping(c: Any, to: str) -> Any:
        iq = c.make_iq_get(ito=to)
        iq.enable("ping")
        return c.query(iq)

    await ping(alice, f"{room}/Alice")  # XEP-0410: still joined
    assert await iq_error(ping(bob, f"{room}/Bob")) == "not-acceptable"  # not joined
    await join(bob, room, "Bob")
    await ping(bob, f"{room}/Bob")
    # an IQ to another occupant is forwarded (slixmpp answers the ping itself)
    await ping(bob, f"{room}/Alice")
    version = bob.make_iq_get(ito=f"{room}/Alice")
    sub(version.xml, "{jabber:iq:version}query")
    assert await iq_error(bob.query(version)) in ("service-unavailable",
                                                    "feature-not-implemented")
    await ping(alice, room)  # the room itself answers pings
