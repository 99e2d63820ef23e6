"""XEP-0060 §16.4: the node configuration PEP supports, and its data forms.

A node's configuration is a ``NodeConfig``. Forms submitted by clients (XEP-0060 §7.1.5
publish-options, §8.2 configure) are read into a dict of changes; fields this service does not
know are ignored, a known field with a bad value is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.numbers import parse_int
from xmpp_server.stanza import element, sub

PUBSUB = "http://jabber.org/protocol/pubsub"
EVENT = PUBSUB + "#event"
OWNER = PUBSUB + "#owner"
ERRORS = PUBSUB + "#errors"
NODE_CONFIG = PUBSUB + "#node_config"
PUBLISH_OPTIONS = PUBSUB + "#publish-options"

_X = "{" + ns.DATA_FORMS + "}x"
_FIELD = "{" + ns.DATA_FORMS + "}field"
_VALUE = "{" + ns.DATA_FORMS + "}value"

ACCESS_MODELS = ("presence", "open", "whitelist")  # XEP-0060 §4.5, less authorize and roster
SEND_LAST = ("never", "on_sub", "on_sub_and_presence")
_TRUE, _FALSE = ("1", "true"), ("0", "false")


@dataclass(frozen=True)
class NodeConfig:
    """XEP-0163 §4.4 defaults: presence access, persistent, the last item only."""

    access_model: str = "presence"
    persist_items: bool = True
    max_items: int | str = 1  # or "max": as many as the service allows (config-node-max)
    send_last_published_item: str = "on_sub_and_presence"
    notify_retract: bool = True
    title: str = ""
    whitelist: tuple[str, ...] = field(default=())  # bare JIDs affiliated as members

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["whitelist"] = list(self.whitelist)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["whitelist"] = tuple(known.get("whitelist", ()))
        return cls(**known)

    def with_changes(self, changes: dict[str, Any]) -> NodeConfig:
        return replace(self, **changes)

    def keep(self, cap: int) -> tuple[int, bool]:
        """How many items the node keeps, and whether older ones are dropped for new ones.

        "max" keeps up to the service's cap and refuses more rather than lose data a client
        asked to keep (XEP-0223 storage, XEP-0402 bookmarks). A node that does not persist
        keeps its last item only, for XEP-0163 §4.3.4 "last published item".
        """
        if not self.persist_items:
            return 1, True
        if self.max_items == "max":
            return cap, False
        return min(int(self.max_items), cap), True

    def matches(self, changes: dict[str, Any]) -> bool:
        """XEP-0060 §7.1.5: whether publish-options are met by this configuration."""
        return all(getattr(self, key) == value for key, value in changes.items())


# -- forms ----------------------------------------------------------------------------------

def _bool(value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected a boolean")


def _max_items(value: str) -> int | str:
    if value == "max":
        return value
    return parse_int(value, 1)


def _choice(options: tuple[str, ...]) -> Any:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value
    return parse


# var -> (attribute, parser, form field type, options)
FIELDS: dict[str, tuple[str, Any, str, tuple[str, ...]]] = {
    "pubsub#access_model": ("access_model", _choice(ACCESS_MODELS), "list-single", ACCESS_MODELS),
    "pubsub#persist_items": ("persist_items", _bool, "boolean", ()),
    "pubsub#max_items": ("max_items", _max_items, "text-single", ()),
    "pubsub#send_last_published_item": ("send_last_published_item", _choice(SEND_LAST),
                                        "list-single", SEND_LAST),
    "pubsub#notify_retract": ("notify_retract", _bool, "boolean", ()),
    "pubsub#title": ("title", str, "text-single", ()),
}


def form_type(x: etree._Element) -> str | None:
    for f in x.iterchildren(_FIELD):
        if f.get("var") == "FORM_TYPE":
            return f.findtext(_VALUE)
    return None


def find_form(parent: etree._Element | None) -> etree._Element | None:
    return None if parent is None else parent.find(_X)


def read_form(x: etree._Element, expected_type: str) -> dict[str, Any]:
    """The known fields of a submitted form, as NodeConfig changes; bad values are refused."""
    if x.get("type") not in ("submit", None):
        raise StanzaError("bad-request", "expected a submitted data form")
    kind = form_type(x)
    if kind is not None and kind != expected_type:
        raise StanzaError("bad-request", f"expected a form of type {expected_type}")
    changes: dict[str, Any] = {}
    for f in x.iterchildren(_FIELD):
        spec = FIELDS.get(f.get("var") or "")
        if spec is None:
            continue  # a field we do not support: ignored, as XEP-0060 §16.4.2 allows
        attr, parse, _, _ = spec
        value = (f.findtext(_VALUE) or "").strip()
        try:
            changes[attr] = parse(value)
        except ValueError as exc:
            raise StanzaError("not-acceptable", f"{f.get('var')}: {exc}") from None
    return changes


def config_form(config: NodeConfig) -> etree._Element:
    """The XEP-0060 §8.2.1 configuration form of a node, filled in."""
    x = element(_X, type="form")
    fld = sub(x, "field", var="FORM_TYPE", type="hidden")
    sub(fld, "value", NODE_CONFIG)
    for var, (attr, _, type_, options) in FIELDS.items():
        value = getattr(config, attr)
        if isinstance(value, bool):
            value = "true" if value else "false"
        fld = sub(x, "field", var=var, type=type_)
        for option in options:
            sub(sub(fld, "option"), "value", option)
        sub(fld, "value", str(value))
    return x


def pubsub_error(condition: str, app: str, text: str | None = None,
                 feature: str | None = None) -> StanzaError:
    """A stanza error with its XEP-0060 application condition (§7.1.3, §6.5.9...)."""
    app_element = element("{" + ERRORS + "}" + app, feature=feature)
    return StanzaError(condition, text, app_element=app_element)
