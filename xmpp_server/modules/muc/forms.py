"""XEP-0004: Data Forms, the little of it rooms need: build a form, read a submitted one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.modules.muc.ns import X_DATA
from xmpp_server.stanza import element, sub

DATA = "jabber:x:data"


@dataclass(frozen=True)
class Field:
    var: str
    type: str | None = None  # XEP-0004 §3.3 field types; None on results
    label: str | None = None
    values: Sequence[str] = ()
    options: Sequence[tuple[str, str | None]] = ()  # (value, label) of list fields


def build(type_: str, form_type: str, fields: Iterable[Field],
          title: str | None = None) -> etree._Element:
    """A form (``type_`` form or result) whose hidden FORM_TYPE is ``form_type`` (XEP-0068)."""
    x = element(X_DATA, type=type_)
    if title:
        sub(x, "title", title)
    ft = sub(x, "field", var="FORM_TYPE", type="hidden")
    sub(ft, "value", form_type)
    for f in fields:
        el = sub(x, "field", var=f.var, type=f.type, label=f.label)
        for value, label in f.options:
            sub(sub(el, "option", label=label), "value", value)
        for value in f.values:
            sub(el, "value", value)
    return x


def parse(x: etree._Element, form_type: str | None = None) -> dict[str, list[str]]:
    """The fields of a submitted form, var -> values; a wrong FORM_TYPE is bad-request."""
    fields: dict[str, list[str]] = {}
    for field in x.iterchildren("{" + DATA + "}field"):
        var = field.get("var")
        if var:
            fields[var] = [v.text or "" for v in field.iterchildren("{" + DATA + "}value")]
    if form_type is not None:
        given = fields.get("FORM_TYPE")
        if given and given[0] != form_type:
            raise StanzaError("bad-request", f"expected a form of type {form_type}")
    return fields


def boolean(values: Sequence[str], var: str) -> bool:
    """XEP-0004 §3.3 boolean: "0", "1", "false" or "true"."""
    value = values[0].strip() if values else ""
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise StanzaError("not-acceptable", f"{var}: expected a boolean")


def single(values: Sequence[str]) -> str:
    return values[0] if values else ""
