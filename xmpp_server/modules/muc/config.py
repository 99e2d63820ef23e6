"""XEP-0045 §10.2: a room's configuration and its XEP-0004 form (muc#roomconfig, §15.5.3).

``RoomConfig`` is the data; ``config_form`` renders it for an owner; ``apply_form`` reads a
submitted form into a new ``RoomConfig`` (fields left out keep their value) and says which
status codes the change is announced with (§10.2.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.modules.muc import forms
from xmpp_server.modules.muc.forms import Field
from xmpp_server.modules.muc.ns import ROOMCONFIG
from xmpp_server.numbers import stanza_int

WHOIS = ("moderators", "anyone")
ALLOW_PM = ("anyone", "participants", "moderators", "none")
MAX_TEXT = 1024  # room name, description, password


@dataclass(frozen=True)
class RoomConfig:
    name: str = ""
    description: str = ""
    persistent: bool = False
    public: bool = True
    members_only: bool = False
    moderated: bool = False
    password: str = ""  # empty: not password-protected
    max_occupants: int = 0  # 0: the service's limit
    whois: str = "moderators"  # semi-anonymous; "anyone": non-anonymous
    allow_invites: bool = False  # occupants (not only admins) may invite to a members-only room
    change_subject: bool = False  # participants (not only moderators) may change the subject
    history_length: int = 20
    archiving: bool = True  # XEP-0313 archive of the room
    allow_pm: str = "anyone"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoomConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _bool(var: str, value: bool, label: str) -> Field:
    return Field("muc#roomconfig_" + var, "boolean", label, ("1" if value else "0",))


def config_form(config: RoomConfig, max_occupants: int, max_history: int) -> etree._Element:
    """The configuration form of a room, filled with its current values (§10.2)."""
    p = "muc#roomconfig_"
    limit = config.max_occupants or max_occupants
    sizes = sorted({n for n in (10, 20, 30, 50, 100, 200, 500, 1000) if n < max_occupants}
                   | {max_occupants, limit})
    return forms.build("form", ROOMCONFIG, [
        Field(p + "roomname", "text-single", "Name", (config.name,)),
        Field(p + "roomdesc", "text-single", "Description", (config.description,)),
        _bool("persistentroom", config.persistent, "Keep the room when it is empty"),
        _bool("publicroom", config.public, "List the room in the directory"),
        _bool("membersonly", config.members_only, "Only members may enter"),
        _bool("moderatedroom", config.moderated, "Only participants with voice may speak"),
        _bool("passwordprotectedroom", bool(config.password), "A password is needed to enter"),
        Field(p + "roomsecret", "text-private", "Password", (config.password,)),
        Field(p + "maxusers", "list-single", "Most occupants", (str(limit),),
              tuple((str(n), None) for n in sizes)),
        Field(p + "whois", "list-single", "Who may see real JIDs", (config.whois,),
              (("moderators", "Moderators only"), ("anyone", "Anyone"))),
        _bool("allowinvites", config.allow_invites, "Occupants may invite others"),
        _bool("changesubject", config.change_subject, "Occupants may change the subject"),
        Field("muc#maxhistoryfetch", "text-single",
              f"Messages of history sent on join (at most {max_history})",
              (str(config.history_length),)),
        _bool("enablearchiving", config.archiving, "Archive the discussion (XEP-0313)"),
        Field(p + "allowpm", "list-single", "Who may send private messages",
              (config.allow_pm,), tuple((v, None) for v in ALLOW_PM)),
    ], title="Room configuration")


def apply_form(config: RoomConfig, x: etree._Element, max_occupants: int,
               max_history: int) -> RoomConfig:
    """A submitted form (§10.2) over the current configuration; not-acceptable if invalid."""
    f = forms.parse(x, ROOMCONFIG)
    changes: dict[str, Any] = {}
    p = "muc#roomconfig_"

    def text(var: str, attr: str) -> None:
        if var in f:
            value = forms.single(f[var])
            if len(value) > MAX_TEXT:
                raise StanzaError("not-acceptable", f"{var}: too long")
            changes[attr] = value

    def flag(var: str, attr: str) -> None:
        if p + var in f:
            changes[attr] = forms.boolean(f[p + var], p + var)

    def choice(var: str, attr: str, allowed: Sequence[str]) -> None:
        if p + var in f:
            value = forms.single(f[p + var])
            if value not in allowed:
                raise StanzaError("not-acceptable", f"{p + var}: one of {', '.join(allowed)}")
            changes[attr] = value

    text(p + "roomname", "name")
    text(p + "roomdesc", "description")
    flag("persistentroom", "persistent")
    flag("publicroom", "public")
    flag("membersonly", "members_only")
    flag("moderatedroom", "moderated")
    flag("allowinvites", "allow_invites")
    flag("changesubject", "change_subject")
    flag("enablearchiving", "archiving")
    choice("whois", "whois", WHOIS)
    choice("allowpm", "allow_pm", ALLOW_PM)
    text(p + "roomsecret", "password")
    if p + "passwordprotectedroom" in f:
        protected = forms.boolean(f[p + "passwordprotectedroom"], p + "passwordprotectedroom")
        if not protected:
            changes["password"] = ""
        elif not changes.get("password", config.password):
            raise StanzaError("not-acceptable", "a password-protected room needs a password")
    if p + "maxusers" in f:
        value = forms.single(f[p + "maxusers"]).strip()
        changes["max_occupants"] = 0 if value in ("", "none") else _number(
            value, p + "maxusers", 1, max_occupants)
    if "muc#maxhistoryfetch" in f:
        changes["history_length"] = _number(
            forms.single(f["muc#maxhistoryfetch"]).strip() or "0", "muc#maxhistoryfetch", 0,
            max_history)
    return replace(config, **changes)


def _number(value: str, var: str, low: int, high: int) -> int:
    return stanza_int(value, var, low, high, condition="not-acceptable")


def change_codes(old: RoomConfig, new: RoomConfig) -> list[str]:
    """§10.2.1 / §15.6: 104 for any change, plus what changed about privacy and logging."""
    codes = ["104"]
    if old.whois != new.whois:
        codes.append("172" if new.whois == "anyone" else "173")
    if old.archiving != new.archiving:
        codes.append("170" if new.archiving else "171")
    return codes
