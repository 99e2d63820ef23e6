"""XEP-0313 queries: the XEP-0004 form and XEP-0059 <set/> of a query, the form itself, and the
result messages and <fin/>.
"""

from __future__ import annotations

import secrets
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from storage.archive import ArchiveEntry
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.numbers import stanza_int
from xmpp_server.stanza import element, sub

QUERY = "{" + ns.MAM + "}query"
METADATA = "{" + ns.MAM + "}metadata"
_X = "{" + ns.DATA_FORMS + "}x"
_FIELD = "{" + ns.DATA_FORMS + "}field"
_VALUE = "{" + ns.DATA_FORMS + "}value"
_SET = "{" + ns.RSM + "}set"
_FLIP = "{" + ns.MAM + "}flip-page"
_XDATA_VALIDATE = "http://jabber.org/protocol/xdata-validate"
# §4.1.5: the fields a query may use; mam:2#extended adds the last three.
FIELDS = (
    ("with", "jid-single"),
    ("start", "text-single"),
    ("end", "text-single"),
    ("before-id", "text-single"),
    ("after-id", "text-single"),
    ("ids", "list-multi"),
)
_KNOWN = {"FORM_TYPE"} | {var for var, _ in FIELDS}
# Stored XML is our own serialisation, parsed safely all the same before it reaches a client.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_RESULT = etree.fromstring(
    f"<message xmlns='{ns.CLIENT}'><result xmlns='{ns.MAM}'><forwarded xmlns='{ns.FORWARD}'>"
    f"<delay xmlns='{ns.DELAY}'/></forwarded></result></message>"
)


@dataclass
class ArchiveRequest:
    """What a query asks for, checked."""

    queryid: str | None = None
    with_jid: JID | None = None
    start: datetime | None = None
    end: datetime | None = None
    after: list[str] = field(default_factory=list)  # after-id and RSM <after/>
    before: list[str] = field(default_factory=list)  # before-id and RSM <before/>
    ids: list[str] | None = None
    limit: int = 50
    backwards: bool = False  # RSM <before/>: the last page of the results
    flip: bool = False  # mam:2#extended <flip-page/>: send the page newest first


def parse_query(query: etree._Element, page_size: int, max_page_size: int) -> ArchiveRequest:
    request = ArchiveRequest(queryid=query.get("queryid"))
    form = query.find(_X)
    if form is not None:
        _parse_form(form, request, max_page_size)
    limit = page_size
    rsm = query.find(_SET)
    if rsm is not None:
        limit = _parse_rsm(rsm, request, page_size)
    # XEP-0059 §2.1: the server may return fewer items than asked; this is its limit.
    request.limit = min(limit, max_page_size)
    request.flip = query.find(_FLIP) is not None
    return request


def _parse_form(form: etree._Element, request: ArchiveRequest, max_ids: int) -> None:
    if form.get("type", "submit") != "submit":
        raise StanzaError("bad-request", "the query form must be of type 'submit'")
    for fld in form.iterchildren(_FIELD):
        var = fld.get("var") or ""
        values = [(v.text or "").strip() for v in fld.iterchildren(_VALUE)]
        if var not in _KNOWN:
            # §4.1.5: an unknown field is feature-not-implemented.
            raise StanzaError("feature-not-implemented", f"unknown query field {var!r}")
        if var == "FORM_TYPE":
            if values and values[0] != ns.MAM:
                raise StanzaError("bad-request", f"FORM_TYPE must be {ns.MAM}")
            continue
        if var == "ids":
            ids = [v for v in values if v]
            if len(ids) > max_ids:
                raise StanzaError("policy-violation", f"at most {max_ids} ids per query")
            request.ids = ids
            continue
        value = values[0] if values else ""
        if not value:
            continue  # an empty field filters nothing
        if var == "with":
            try:
                request.with_jid = JID.parse(value)
            except JIDError as exc:
                raise StanzaError("jid-malformed", f"'with' is not a JID: {value!r}") from exc
        elif var == "start":
            request.start = parse_datetime(value, var)
        elif var == "end":
            request.end = parse_datetime(value, var)
        elif var == "after-id":
            request.after.append(value)
        else:
            request.before.append(value)


def _parse_rsm(rsm: etree._Element, request: ArchiveRequest, page_size: int) -> int:
    limit = page_size
    for child in rsm:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        text = (child.text or "").strip()
        if name == "max":
            limit = stanza_int(text, "<max/>")
        elif name == "after":
            if not text:
                raise StanzaError("bad-request", "<after/> needs an id")
            request.after.append(text)
        elif name == "before":
            # XEP-0059 §2.5: an empty <before/> asks for the last page.
            request.backwards = True
            if text:
                request.before.append(text)
        elif name == "index":
            raise StanzaError("feature-not-implemented", "paging by index is not supported")
    return limit


def parse_datetime(value: str, var: str) -> datetime:
    """XEP-0082 DateTime; a value without a time zone is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise StanzaError("bad-request", f"{var}: not a XEP-0082 DateTime: {value!r}") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def xep0082(when: datetime) -> str:
    """XEP-0082 DateTime in UTC with milliseconds."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def form_element() -> etree._Element:
    """§4.1.5: the fields the server supports, 'ids' open to any value (XEP-0122)."""
    query = element(QUERY)
    form = sub(query, _X, type="form")
    hidden = sub(form, "field", type="hidden", var="FORM_TYPE")
    sub(hidden, "value", ns.MAM)
    for var, type_ in FIELDS:
        fld = sub(form, "field", type=type_, var=var)
        if var == "ids":
            validate = sub(fld, "{" + _XDATA_VALIDATE + "}validate", datatype="xs:string")
            sub(validate, "open")
    return query


def result_message(to: str, frm: str, queryid: str | None,
                   entry: ArchiveEntry) -> etree._Element:
    """§4.2: one result, the stored message forwarded (XEP-0297) with its XEP-0203 delay.

    A copy of a fixed skeleton: a page builds up to max_page_size of these, and copying is
    several times cheaper than building four namespaced elements.
    """
    msg = deepcopy(_RESULT)
    msg.set("to", to)
    msg.set("from", frm)
    msg.set("id", secrets.token_hex(8))
    result = msg[0]
    if queryid is not None:
        result.set("queryid", queryid)
    result.set("id", entry.id)
    forwarded = result[0]
    forwarded[0].set("stamp", xep0082(entry.ts))
    forwarded.append(etree.fromstring(entry.xml, _PARSER))
    return msg


def fin_element(entries: list[ArchiveEntry], complete: bool) -> etree._Element:
    """§4.3: RSM first/last of the page; complete='true' when nothing is left to page through."""
    fin = element("{" + ns.MAM + "}fin", complete="true" if complete else None)
    rsm = sub(fin, _SET)
    if entries:
        sub(rsm, "first", entries[0].id)
        sub(rsm, "last", entries[-1].id)
    return fin


def metadata_element(first: ArchiveEntry | None, last: ArchiveEntry | None) -> etree._Element:
    """§5: the first and last entries of the archive; empty for an empty archive."""
    metadata = element(METADATA)
    if first is not None and last is not None:
        sub(metadata, "start", id=first.id, timestamp=xep0082(first.ts))
        sub(metadata, "end", id=last.id, timestamp=xep0082(last.ts))
    return metadata
