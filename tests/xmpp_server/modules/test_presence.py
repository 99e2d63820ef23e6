"""RFC 6121 Appendix A: the subscription state tables, checked row by row; §4.7.2.3 priority."""

from __future__ import annotations

import pytest
from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.modules.presence.broadcast import parse_priority
from xmpp_server.modules.presence.states import Outcome, State, inbound, outbound

# The nine states of Appendix A by their names there.
STATES = {
    "None": State(),
    "None + Pending Out": State(ask=True),
    "None + Pending In": State(pending_in=True),
    "None + Pending Out/In": State(ask=True, pending_in=True),
    "To": State("to"),
    "To + Pending In": State("to", pending_in=True),
    "From": State("from"),
    "From + Pending Out": State("from", ask=True),
    "Both": State("both"),
}
SAME = None  # "no state change"

# Appendix A.2 (the user's server, stanzas the user sends): existing state -> new state.
OUTBOUND = {
    "subscribe": {  # A.2.1
        "None": "None + Pending Out", "None + Pending Out": SAME,
        "None + Pending In": "None + Pending Out/In", "None + Pending Out/In": SAME,
        "To": SAME, "To + Pending In": SAME, "From": "From + Pending Out",
        "From + Pending Out": SAME, "Both": SAME,
    },
    "unsubscribe": {  # A.2.2
        "None": SAME, "None + Pending Out": "None", "None + Pending In": SAME,
        "None + Pending Out/In": "None + Pending In", "To": "None",
        "To + Pending In": "None + Pending In", "From": SAME, "From + Pending Out": "From",
        "Both": "From",
    },
    "subscribed": {  # A.2.3, for a server without pre-approval (§3.4: see below)
        "None": SAME, "None + Pending Out": SAME, "To": SAME, "None + Pending In": "From",
        "None + Pending Out/In": "From + Pending Out", "To + Pending In": "Both",
        "From": SAME, "From + Pending Out": SAME, "Both": SAME,
    },
    "unsubscribed": {  # A.2.4
        "None": SAME, "None + Pending Out": SAME, "None + Pending In": "None",
        "None + Pending Out/In": "None + Pending Out", "To": SAME, "To + Pending In": "To",
        "From": "None", "From + Pending Out": "None + Pending Out", "Both": "To",
    },
}

# Appendix A.3 (the contact's server, stanzas the contact receives): (deliver?, new state).
INBOUND = {
    "subscribe": {  # A.3.1 ("From"/"Both": not delivered, answered by the server)
        "None": (True, "None + Pending In"), "None + Pending Out": (True, "None + Pending Out/In"),
        "None + Pending In": (False, SAME), "None + Pending Out/In": (False, SAME),
        "To": (True, "To + Pending In"), "To + Pending In": (False, SAME),
        "From": (False, SAME), "From + Pending Out": (False, SAME), "Both": (False, SAME),
    },
    "subscribed": {  # A.3.2
        "None": (False, SAME), "None + Pending Out": (True, "To"),
        "None + Pending In": (False, SAME), "None + Pending Out/In": (True, "To + Pending In"),
        "To": (False, SAME), "To + Pending In": (False, SAME), "From": (False, SAME),
        "From + Pending Out": (True, "Both"), "Both": (False, SAME),
    },
    "unsubscribe": {  # A.3.3
        "None": (False, SAME), "None + Pending Out": (False, SAME),
        "None + Pending In": (True, "None"), "None + Pending Out/In": (True, "None + Pending Out"),
        "To": (False, SAME), "To + Pending In": (True, "To"), "From": (True, "None"),
        "From + Pending Out": (True, "None + Pending Out"), "Both": (True, "To"),
    },
    "unsubscribed": {  # A.3.4
        "None": (False, SAME), "None + Pending Out": (True, "None"),
        "None + Pending In": (False, SAME), "None + Pending Out/In": (True, "None + Pending In"),
        "To": (True, "None"), "To + Pending In": (True, "None + Pending In"),
        "From": (False, SAME), "From + Pending Out": (True, "From"), "Both": (True, "From"),
    },
}


def _rows(table: dict[str, dict[str, object]]) -> list[tuple[str, str, object]]:
    return [(type_, state, new) for type_, rows in table.items() for state, new in rows.items()]


@pytest.mark.parametrize(("type_", "state", "expected"), _rows(OUTBOUND))  # type: ignore[arg-type]
def test_outbound_table(type_: str, state: str, expected: str | None) -> None:
    old = STATES[state]
    outcome = outbound(old, type_, pre_approval=False)
    assert outcome.state == (old if expected is SAME else STATES[expected])


@pytest.mark.parametrize(("type_", "state", "expected"), _rows(INBOUND))  # type: ignore[arg-type]
def test_inbound_table(type_: str, state: str, expected: tuple[bool, str | None]) -> None:
    deliver, new = expected
    old = STATES[state]
    outcome = inbound(old, type_)
    assert outcome.state == (old if new is SAME else STATES[new])
    assert outcome.forward is deliver


def test_outbound_routing() -> None:
    # §3.1.2, §3.3.1, §3.2.1: requests and cancellations always travel
    for type_ in ("subscribe", "unsubscribe", "unsubscribed"):
        assert all(outbound(s, type_).forward for s in STATES.values())
    # §3.1.5: an approval travels only when it answers a pending request
    forwarded = {name for name, s in STATES.items() if outbound(s, "subscribed").forward}
    assert forwarded == {"None + Pending In", "None + Pending Out/In", "To + Pending In"}


@pytest.mark.parametrize("state", ["None", "None + Pending Out", "To"])
def test_subscribed_without_request_is_a_pre_approval(state: str) -> None:
    """§3.4: recorded, not routed; without server support nothing happens."""
    old = STATES[state]
    assert outbound(old, "subscribed") == Outcome(State(old.subscription, old.ask,
                                                        approved=True), forward=False)
    assert outbound(old, "subscribed", pre_approval=False) == Outcome(old, forward=False)


def test_pre_approved_subscribe_is_answered_and_grants_from() -> None:
    outcome = inbound(State(approved=True), "subscribe")
    assert outcome == Outcome(State("from"), forward=False, auto_reply=True)
    outcome = inbound(State("to", approved=True), "subscribe")
    assert outcome == Outcome(State("both"), forward=False, auto_reply=True)


@pytest.mark.parametrize("state", ["From", "From + Pending Out", "Both"])
def test_subscribe_from_a_subscriber_is_answered(state: str) -> None:
    assert inbound(STATES[state], "subscribe").auto_reply


def test_unsubscribed_withdraws_a_pre_approval() -> None:
    assert outbound(State(approved=True), "unsubscribed").state == State()


def test_not_a_subscription_type() -> None:
    with pytest.raises(ValueError):
        outbound(State(), "probe")
    with pytest.raises(ValueError):
        inbound(State(), "unavailable")


def _presence(priority: str | None) -> etree._Element:
    el = etree.Element("{jabber:client}presence")
    if priority is not None:
        etree.SubElement(el, "{jabber:client}priority").text = priority
    return el


@pytest.mark.parametrize(("text", "value"),
                         [(None, 0), ("5", 5), (" -128 ", -128), ("127", 127), ("+3", 3)])
def test_priority(text: str | None, value: int) -> None:
    assert parse_priority(_presence(text)) == value


@pytest.mark.parametrize("text", ["", "high", "1.5", "128", "-129", "99999999999"])
def test_bad_priority(text: str) -> None:
    with pytest.raises(StanzaError) as info:
        parse_priority(_presence(text))
    assert info.value.condition == "bad-request"
