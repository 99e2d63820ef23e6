"""XEP-0425 moderation as clients send it: ``:1`` (slixmpp today) and the fastened ``:0``
(XEP-0422 ``apply-to``, what Debian 12's slixmpp 1.8.3 and older Gajim and Conversations send).

Whichever form asks, every occupant gets one notice in both forms and the archive keeps the
same tombstone.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from slixmpp import JID

from tests.scenarios.muc.helpers import (
    OCCUPANT_ID,
    SID,
    client,
    clients,
    create,
    disco_info_iq,
    entered,
    groupchat,
    iq_error,
    say,
    send_join,
    statuses,
    sub,
)
from tests.scenarios.muc.test_archive import mam
from tests.support.databases import unavailable

FASTEN = "urn:xmpp:fasten:0"
MODERATE_0 = "urn:xmpp:message-moderate:0"
RETRACT_0 = "urn:xmpp:message-retract:0"
MODERATE_1 = "urn:xmpp:message-moderate:1"
RETRACT_1 = "urn:xmpp:message-retract:1"
FORWARD = "urn:xmpp:forward:0"
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_MODERATOR = Path(__file__).with_name("debian_slixmpp_moderator.py")


async def _rude_message(server: Any, name: str) -> tuple[str, Any, Any, Any, str]:
    """A room where Alice moderates and Bob said something rude: (room, alice, bob, carol,
    the rude message's stanza-id)."""
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, name, "Alice")
    await entered(bob, room, "Bob")
    say(bob, room, "something rude")
    msg = await groupchat(alice, "something rude")
    return room, alice, bob, carol, msg.xml.find(f"{{{SID}}}stanza-id").get("id")


def _fastened(c: Any, room: str, sid: str | None, *, reason: str | None = "Be nice",
              retract: bool = True, moderate: bool = True) -> Any:
    """The v0.2 request, written out as older clients write it."""
    iq = c.make_iq_set(ito=room)
    apply_to = sub(iq.xml, f"{{{FASTEN}}}apply-to", **({"id": sid} if sid else {}))
    if moderate:
        request = sub(apply_to, f"{{{MODERATE_0}}}moderate")
        if retract:
            sub(request, f"{{{RETRACT_0}}}retract")
        if reason is not None:
            sub(request, f"{{{MODERATE_0}}}reason", reason)
    return c.query(iq)


def _is_notice(m: Any) -> bool:
    return m.xml.find(f"{{{FASTEN}}}apply-to") is not None


def _both_forms(notice: Any, room: str, sid: str, by: str, reason: str) -> None:
    """The notice carries the v0.2 form (fastened) and the v0.3 form, as Prosody sends it."""
    assert str(notice["from"]) == room and notice["type"] == "groupchat"
    apply_to = notice.xml.find(f"{{{FASTEN}}}apply-to")
    assert apply_to.get("id") == sid
    old = apply_to.find(f"{{{MODERATE_0}}}moderated")
    assert old.get("by") == by
    assert old.find(f"{{{RETRACT_0}}}retract") is not None
    assert old.findtext(f"{{{MODERATE_0}}}reason") == reason
    assert old.find(f"{{{OCCUPANT_ID}}}occupant-id").get("id")
    new = notice.xml.find(f"{{{RETRACT_1}}}retract")
    assert new.get("id") == sid
    assert new.find(f"{{{MODERATE_1}}}moderated").get("by") == by
    assert new.findtext(f"{{{RETRACT_1}}}reason") == reason
    assert notice.xml.find(f"{{{SID}}}stanza-id") is not None  # archived, for MAM catch-up


async def _tombstone_in_archive(c: Any, room: str, sid: str) -> None:
    """§5: the archive holds a tombstone (the same for either form) in the message's place."""
    results, _ = await mam(c, room)
    assert results[0].get("id") == sid
    tomb = results[0].find(f"{{{FORWARD}}}forwarded/{{jabber:client}}message")
    assert tomb.find("{jabber:client}body") is None
    assert tomb.get("from") == f"{room}/Bob"
    retracted = tomb.find(f"{{{RETRACT_1}}}retracted")
    assert retracted is not None and retracted.get("stamp")
    assert retracted.find(f"{{{MODERATE_1}}}moderated").get("by") == f"{room}/Alice"
    # the notice is archived after it, in both forms
    notice = results[-1].find(f"{{{FORWARD}}}forwarded/{{jabber:client}}message")
    assert notice.find(f"{{{FASTEN}}}apply-to").get("id") == sid
    assert notice.find(f"{{{RETRACT_1}}}retract").get("id") == sid


async def test_room_advertises_both_forms(server):
    alice = await client(server, "alice")
    room = await create(alice, "lounge", "Alice")
    info = (await disco_info_iq(alice, room)).xml
    features = {f.get("var") for f in info.iter(
        "{http://jabber.org/protocol/disco#info}feature")}
    assert {MODERATE_0, MODERATE_1} <= features


async def test_slixmpp_plugin_moderates(server):
    """The suite's slixmpp: its xep_0425 plugin asks with :1 and reads the :1 notice."""
    alice = await client(server, "alice", plugins=("xep_0425",))
    bob = await client(server, "bob", plugins=("xep_0425",))
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    events: asyncio.Queue[Any] = asyncio.Queue()
    bob.add_event_handler("moderated_message", events.put_nowait)
    say(bob, room, "something rude")
    msg = await groupchat(alice, "something rude")
    sid = msg.xml.find(f"{{{SID}}}stanza-id").get("id")
    await alice.plugin["xep_0425"].moderate(JID(room), sid, "Be nice")
    notice = await asyncio.wait_for(events.get(), 10)
    assert notice["retract"]["id"] == sid
    assert notice["retract"]["reason"] == "Be nice"
    assert notice["retract"]["moderated"]["by"] == f"{room}/Alice"
    _both_forms(notice, room, sid, f"{room}/Alice", "Be nice")
    await _tombstone_in_archive(bob, room, sid)


async def test_fastened_request(server):
    """A v0.2 request written by hand: refused as :1 is, then applied, once."""
    room, alice, bob, carol, sid = await _rude_message(server, "lounge")
    assert await iq_error(_fastened(bob, room, sid)) == "forbidden"  # Bob does not moderate
    assert await iq_error(_fastened(carol, room, sid)) == "forbidden"  # not even in the room
    assert await iq_error(_fastened(alice, room, None)) == "bad-request"  # which message?
    assert await iq_error(_fastened(alice, room, "nope")) == "item-not-found"
    assert await iq_error(_fastened(alice, room, sid, retract=False)) \
        == "feature-not-implemented"
    assert await iq_error(_fastened(alice, room, sid, moderate=False)) \
        == "service-unavailable"  # some other fastening
    await bob.nothing("stanza", _is_notice, wait=0.2)  # none of those retracted it
    await _fastened(alice, room, sid)
    for c in (alice, bob):
        _both_forms(await c.next("stanza", _is_notice), room, sid, f"{room}/Alice", "Be nice")
    await _fastened(alice, room, sid)  # again: answered, nothing more to tell
    await bob.nothing("stanza", _is_notice)
    await _tombstone_in_archive(carol, room, sid)
    # whoever enters now gets the tombstone as history
    send_join(carol, room, "Carol")
    await carol.next("presence", lambda p: "110" in statuses(p))
    history = await carol.next("stanza")
    assert history.xml.find(f"{{{RETRACT_1}}}retracted") is not None
    assert history.xml.find("{jabber:client}body") is None


async def test_fastened_request_without_reason(server):
    room, alice, bob, _, sid = await _rude_message(server, "lounge")
    await _fastened(alice, room, sid, reason=None)
    notice = await bob.next("stanza", _is_notice)
    moderated = notice.xml.find(f"{{{FASTEN}}}apply-to/{{{MODERATE_0}}}moderated")
    assert moderated.find(f"{{{MODERATE_0}}}reason") is None
    assert notice.xml.find(f"{{{RETRACT_1}}}retract/{{{RETRACT_1}}}reason") is None


def _debian_moderator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DEBIAN_PYTHON, str(DEBIAN_MODERATOR), *args], capture_output=True,
                          text=True, timeout=90)


def _require_debian_slixmpp() -> None:
    try:
        probe = subprocess.run([DEBIAN_PYTHON, "-c", "import slixmpp; print(slixmpp.__version__)"],
                               capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        unavailable("Debian's slixmpp", f"{DEBIAN_PYTHON} not installed")
        return
    if probe.returncode != 0 or not probe.stdout.startswith("1.8."):
        unavailable("Debian's slixmpp 1.8", f"{DEBIAN_PYTHON}: {probe.stdout or probe.stderr}")


async def test_debian_slixmpp_plugin_moderates(server):
    """Debian 12's slixmpp 1.8.3: its xep_0425 plugin asks with the fastened :0 and reads
    the fastened notice (its ``moderated_message`` event) from the same message."""
    _require_debian_slixmpp()
    room, _, bob, carol, sid = await _rude_message(server, "lounge")
    # Alice's second client, on the old slixmpp, shares her nick and her moderator role
    done = await asyncio.to_thread(
        _debian_moderator, str(server.c2s_port), "alice@localhost/debian", "secret", room,
        "Alice", sid, "Be nice")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"from": room, "id": sid, "by": f"{room}/Alice", "reason": "Be nice"}
    _both_forms(await bob.next("stanza", _is_notice), room, sid, f"{room}/Alice", "Be nice")
    await _tombstone_in_archive(carol, room, sid)
