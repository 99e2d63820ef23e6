"""storage/rooms.py on SQLite and PostgreSQL: rooms, affiliations, the room archive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from storage import open_storage
from storage.rooms import (
    ArchivedMessage,
    ArchiveQuery,
    RoomRepository,
    StoredAffiliation,
    StoredRoom,
    UnknownArchiveId,
)

ROOM = "lounge@conference.localhost"
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def rooms(db_url: str) -> AsyncIterator[RoomRepository]:
    store = await open_storage(db_url)
    try:
        yield store.rooms
    finally:
        await store.close()


def _room(jid: str = ROOM, **config: object) -> StoredRoom:
    return StoredRoom(jid=jid, config={"name": "Lounge", **config}, secret="s", subject="Hi",
                      subject_by="alice", affiliations=[
                          StoredAffiliation("alice@localhost", "owner"),
                          StoredAffiliation("bob@localhost", "member", "Bobby", "friend")])


async def test_rooms_and_affiliations(rooms: RoomRepository) -> None:
    assert await rooms.get(ROOM) is None
    await rooms.save(_room())
    got = await rooms.get(ROOM)
    assert got == _room()
    await rooms.set_affiliations(ROOM, [StoredAffiliation("bob@localhost", "none"),
                                        StoredAffiliation("eve@localhost", "outcast")])
    got = await rooms.get(ROOM)
    assert got is not None
    assert [(a.jid, a.affiliation) for a in got.affiliations] == [
        ("alice@localhost", "owner"), ("eve@localhost", "outcast")]
    await rooms.set_config(ROOM, {"name": "Renamed"})
    await rooms.set_subject(ROOM, None, None)
    got = await rooms.get(ROOM)
    assert got is not None and got.config == {"name": "Renamed"} and got.subject is None
    await rooms.save(_room())  # saving again replaces everything
    got = await rooms.get(ROOM)
    assert got is not None and len(got.affiliations) == 2
    assert await rooms.affiliations_of("bob@localhost") == [(ROOM, "member")]
    await rooms.forget_jid("bob@localhost")
    assert await rooms.affiliations_of("bob@localhost") == []


async def test_listing_by_service(rooms: RoomRepository) -> None:
    await rooms.save(_room("a@conference.localhost"))
    await rooms.save(_room("b@conference.localhost", public=False))
    await rooms.save(_room("c@conference_localhost"))  # '_' is no LIKE wildcard here
    await rooms.save(_room("d@other.localhost"))
    listed = await rooms.rooms("conference.localhost")
    assert [r.jid for r in listed] == ["a@conference.localhost", "b@conference.localhost"]
    assert listed[1].config["public"] is False
    assert len(await rooms.rooms()) == 4


def _message(i: int, nick: str = "alice", when: datetime | None = None) -> ArchivedMessage:
    return ArchivedMessage(f"id{i}", nick, f"{nick}@localhost", when or T0 + timedelta(
        minutes=i), f"<message><body>{i}</body></message>")


async def test_archive_pages(rooms: RoomRepository) -> None:
    await rooms.append([(ROOM, _message(i, "alice" if i % 2 else "bob")) for i in range(10)]
                       + [("other@conference.localhost", _message(99))])
    page = await rooms.query(ROOM, ArchiveQuery(limit=4))
    assert [m.stanza_id for m in page.messages] == ["id0", "id1", "id2", "id3"]
    assert not page.complete and page.count == 10
    page = await rooms.query(ROOM, ArchiveQuery(limit=4, after="id7"))
    assert [m.stanza_id for m in page.messages] == ["id8", "id9"] and page.complete
    page = await rooms.query(ROOM, ArchiveQuery(limit=3, before=""))
    assert [m.stanza_id for m in page.messages] == ["id7", "id8", "id9"] and not page.complete
    page = await rooms.query(ROOM, ArchiveQuery(limit=3, before="id2"))
    assert [m.stanza_id for m in page.messages] == ["id0", "id1"] and page.complete
    page = await rooms.query(ROOM, ArchiveQuery(limit=3, after="id1", before="id5"))
    assert [m.stanza_id for m in page.messages] == ["id2", "id3", "id4"]
    page = await rooms.query(ROOM, ArchiveQuery(nick="bob"))
    assert [m.stanza_id for m in page.messages] == ["id0", "id2", "id4", "id6", "id8"]
    page = await rooms.query(ROOM, ArchiveQuery(sender="alice@localhost",
                                                start=T0 + timedelta(minutes=5)))
    assert [m.stanza_id for m in page.messages] == ["id5", "id7", "id9"]
    page = await rooms.query(ROOM, ArchiveQuery(end=T0 + timedelta(minutes=1), limit=0))
    assert page.messages == [] and page.count == 2
    page = await rooms.query(ROOM, ArchiveQuery(ids=["id3", "id99", "id5"]))
    assert [m.stanza_id for m in page.messages] == ["id3", "id5"]
    assert page.messages[0].stored_at == T0 + timedelta(minutes=3)  # aware UTC back
    with pytest.raises(UnknownArchiveId):
        await rooms.query(ROOM, ArchiveQuery(after="id99"))  # another room's id


async def test_archive_retract_recent_and_delete(rooms: RoomRepository) -> None:
    await rooms.save(_room())
    await rooms.append([(ROOM, _message(i)) for i in range(5)])
    assert await rooms.retract(ROOM, "id2", "<message><retracted/></message>")
    assert not await rooms.retract(ROOM, "nope", "<x/>")
    found = await rooms.find(ROOM, "id2")
    assert found is not None and found.retracted and found.xml.endswith("<retracted/></message>")
    recent = await rooms.recent(ROOM, 3)
    assert [m.stanza_id for m in recent] == ["id2", "id3", "id4"]
    await rooms.delete(ROOM, archive=False)  # no longer persistent: the archive stays
    assert await rooms.get(ROOM) is None
    assert len(await rooms.recent(ROOM, 10)) == 5
    await rooms.delete(ROOM)
    assert await rooms.recent(ROOM, 10) == []
