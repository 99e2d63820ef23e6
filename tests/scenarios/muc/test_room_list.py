"""``xmppd room list``, run as a separate process as an operator runs it: every room the
running server has, persistent or not, with its occupants; the stored ones when no server runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.scenarios.muc.helpers import (
    client,
    clients,
    create,
    entered,
    gone,
    join,
    leave,
    room_jid,
)
from tests.xmpp_server.test_cli import xmppd
from xmpp_server.server import Server


def _conf(server: Server, tmp_path: Path) -> Path:
    """The configuration the operator runs the command with: the server's own."""
    path = tmp_path / "xmppd.toml"
    path.write_text(f'[server]\ndomain = "localhost"\n'
                    f'data_dir = "{server.config.server.data_dir}"\n'
                    f'[storage]\nurl = "{server.config.storage.url}"\n')
    return path


async def _room_list(conf: Path, tmp_path: Path) -> tuple[dict[str, dict[str, str]], str]:
    """Run ``xmppd room list``: ({room: {flags, occupants, owners, name}}, stderr)."""
    done = await asyncio.to_thread(xmppd, "room", "list", "-c", str(conf), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rooms = {}
    for line in done.stdout.splitlines():
        jid, flags, occupants, owners, name = line.split("\t")
        rooms[jid] = {"flags": set(flags.split(",")), "occupants": occupants.split("=")[1],
                      "owners": owners.split("=")[1], "name": name}
    return rooms, done.stderr


async def test_live_rooms_with_their_occupants(servers, tmp_path):
    server = await servers.start()
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    chat = await create(alice, "chat", "Alice", roomname="Chat")  # temporary
    await entered(bob, chat, "Bob")
    kept = await create(alice, "kept", "Alice", persistentroom="1")
    leave(alice, kept, "Alice")
    await alice.next("presence", gone(f"{kept}/Alice"))
    fresh = room_jid("fresh")
    await join(carol, fresh, "Carol")  # just created: locked, not configured
    conf = _conf(server, tmp_path)

    rooms, stderr = await _room_list(conf, tmp_path)
    assert stderr == ""
    assert set(rooms) == {chat, kept, fresh}
    assert rooms[chat] == {"flags": {"temporary", "public", "open"}, "occupants": "2",
                           "owners": "alice@localhost", "name": "Chat"}
    assert rooms[kept]["flags"] == {"persistent", "public", "open"}
    assert rooms[kept]["occupants"] == "0"
    assert rooms[fresh]["flags"] == {"temporary", "public", "open", "locked"}
    assert (rooms[fresh]["occupants"], rooms[fresh]["owners"]) == ("1", "carol@localhost")

    # it is what the server holds now: Bob leaves, Dave enters the stored room
    leave(bob, chat, "Bob")
    await bob.next("presence", gone(f"{chat}/Bob"))
    dave = await client(server, "dave")
    await entered(dave, kept, "Dave")
    rooms, _ = await _room_list(conf, tmp_path)
    assert (rooms[chat]["occupants"], rooms[kept]["occupants"]) == ("1", "1")


async def test_stored_rooms_when_no_server_runs(servers, tmp_path):
    server = await servers.start()
    alice, bob = await clients(server, "alice", "bob")
    kept = await create(alice, "kept", "Alice", persistentroom="1", roomname="Kept")
    await create(bob, "brief", "Bob")  # temporary: gone with the server
    conf = _conf(server, tmp_path)
    socket = server.config.server.data_dir / "admin.sock"
    assert socket.is_socket()
    await servers.stop(server)
    assert not socket.exists()  # the server took its socket away

    rooms, stderr = await _room_list(conf, tmp_path)
    assert "no server is running" in stderr and "stored rooms only" in stderr
    assert stderr.count("\n") == 1
    assert rooms == {kept: {"flags": {"persistent", "public", "open"}, "occupants": "?",
                            "owners": "alice@localhost", "name": "Kept"}}
