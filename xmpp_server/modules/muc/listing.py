"""What ``xmppd room list`` shows of each room: one ``RoomSummary`` per room.

The running server summarises every room it has: the stored (persistent) ones and those in
memory, persistent or not, with their occupants (``summaries``); the command line asks it
through the local admin endpoint (``web_bridge/admin_socket.py``). When no server runs, the
command line summarises the stored rooms itself (``stored_summary``), occupants unknown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from storage.rooms import RoomRepository, StoredRoom
from xmpp_server.modules.muc.config import RoomConfig

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService


@dataclass(frozen=True)
class RoomSummary:
    jid: str
    name: str
    persistent: bool
    public: bool
    members_only: bool
    password: bool
    moderated: bool
    locked: bool
    occupants: int | None  # None: unknown (no running server was asked)
    owners: tuple[str, ...]

    def flags(self) -> str:
        return ",".join((
            "persistent" if self.persistent else "temporary",
            "public" if self.public else "hidden",
            "members-only" if self.members_only else "open",
            *(("password",) if self.password else ()),
            *(("moderated",) if self.moderated else ()),
            *(("locked",) if self.locked else ())))

    def line(self) -> str:
        """JID, flags, occupants, owners and name, separated by tabs."""
        occupants = "?" if self.occupants is None else str(self.occupants)
        return (f"{self.jid}\t{self.flags()}\toccupants={occupants}"
                f"\towners={','.join(self.owners) or '-'}\t{self.name}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoomSummary:
        occupants = data.get("occupants")
        return cls(
            jid=str(data["jid"]), name=str(data.get("name") or ""),
            persistent=bool(data.get("persistent")), public=bool(data.get("public")),
            members_only=bool(data.get("members_only")), password=bool(data.get("password")),
            moderated=bool(data.get("moderated")), locked=bool(data.get("locked")),
            occupants=None if occupants is None else int(occupants),
            owners=tuple(str(o) for o in data.get("owners") or ()))


def _summary(jid: str, config: RoomConfig, owners: list[str], occupants: int | None,
             locked: bool = False) -> RoomSummary:
    return RoomSummary(
        jid=jid, name=config.name, persistent=config.persistent, public=config.public,
        members_only=config.members_only, password=bool(config.password),
        moderated=config.moderated, locked=locked, occupants=occupants,
        owners=tuple(sorted(owners)))


def stored_summary(stored: StoredRoom, occupants: int | None) -> RoomSummary:
    """A stored room (with its affiliations, ``RoomRepository.get``)."""
    owners = [a.jid for a in stored.affiliations if a.affiliation == "owner"]
    return _summary(stored.jid, RoomConfig.from_json(stored.config), owners, occupants)


def live_summary(room: Room) -> RoomSummary:
    owners = [jid for jid, aff in room.affiliations.items() if aff == "owner"]
    return _summary(room.jid_str, room.config, owners, len(room.occupants), room.locked)


async def stored_summaries(storage: RoomRepository, domain: str,
                           occupants: int | None) -> list[RoomSummary]:
    """The stored rooms of the service at ``domain``, by JID."""
    out = []
    for listed in await storage.rooms(domain):
        stored = await storage.get(listed.jid)  # with its affiliations
        if stored is not None:
            out.append(stored_summary(stored, occupants))
    return out


async def summaries(service: MucService) -> list[RoomSummary]:
    """Every room of the service, by JID: those in memory as they are now, the stored ones
    nobody has entered since the start (no occupants) as stored."""
    out = {s.jid: s for s in await stored_summaries(service.storage, service.domain, 0)}
    for room in list(service.rooms.values()):
        if room.destroyed:
            out.pop(room.jid_str, None)
        else:
            out[room.jid_str] = live_summary(room)
    return [out[jid] for jid in sorted(out)]
