"""RFC 6121 §2: validating roster sets (§2.3.3, §2.5) and the items of results and pushes."""

from __future__ import annotations

import pytest
from lxml import etree

from storage import RosterItem
from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.roster import MAX_GROUP, MAX_NAME, ItemSet, item_element, parse_set

OWNER = JID.parse("juliet@example.com/balcony")
R = "{jabber:iq:roster}"


def query(xml: str) -> etree._Element:
    return etree.fromstring(f"<query xmlns='jabber:iq:roster'>{xml}</query>")


def test_update_with_name_and_groups() -> None:
    change = parse_set(query("<item jid='Nurse@Example.com' name='Nurse'>"
                             "<group>Servants</group><group>Friends</group></item>"), OWNER)
    assert change == ItemSet("nurse@example.com", remove=False, name="Nurse",
                             groups=("Servants", "Friends"))


def test_remove() -> None:
    change = parse_set(query("<item jid='nurse@example.com' subscription='remove'/>"), OWNER)
    assert change == ItemSet("nurse@example.com", remove=True)


@pytest.mark.parametrize("value", ["none", "to", "from", "both"])
def test_subscription_states_are_ignored(value: str) -> None:
    """§2.1.2.5: only 'remove' means something in a set (clients echo the current state)."""
    change = parse_set(query(f"<item jid='a@b' subscription='{value}' ask='subscribe' "
                             "approved='true'/>"), OWNER)
    assert change == ItemSet("a@b", remove=False)


def test_empty_name_is_no_name() -> None:
    assert parse_set(query("<item jid='a@b' name=''/>"), OWNER).name is None


@pytest.mark.parametrize(
    ("xml", "condition"),
    [
        ("", "bad-request"),
        ("<item jid='a@b'/><item jid='c@d'/>", "bad-request"),
        ("<item/>", "bad-request"),
        ("<item jid='a@b' subscription='bogus'/>", "bad-request"),
        ("<item jid='a@b/resource'/>", "bad-request"),
        ("<item jid='juliet@example.com'/>", "not-allowed"),
        ("<item jid='a@@b'/>", "jid-malformed"),
        ("<item jid='a b@c'/>", "jid-malformed"),
        (f"<item jid='a@b' name='{'n' * (MAX_NAME + 1)}'/>", "not-acceptable"),
        (f"<item jid='a@b'><group>{'g' * (MAX_GROUP + 1)}</group></item>", "not-acceptable"),
        ("<item jid='a@b'><group/></item>", "not-acceptable"),
        ("<item jid='a@b'><group>G</group><group>G</group></item>", "bad-request"),
    ],
    ids=["no-item", "two-items", "no-jid", "bad-subscription", "full-jid", "self",
         "malformed", "space", "long-name", "long-group", "empty-group", "duplicate-group"],
)
def test_invalid_sets(xml: str, condition: str) -> None:
    with pytest.raises(StanzaError) as info:
        parse_set(query(xml), OWNER)
    assert info.value.condition == condition


def test_longest_name_and_group_are_accepted() -> None:
    change = parse_set(query(f"<item jid='a@b' name='{'n' * MAX_NAME}'>"
                             f"<group>{'g' * MAX_GROUP}</group></item>"), OWNER)
    assert change.name is not None and len(change.name) == MAX_NAME


def test_item_element() -> None:
    item = RosterItem("romeo@example.net", name="Romeo", subscription="to", ask=False,
                      approved=True, groups=["Friends", "Lovers"])
    el = item_element(item)
    assert el.tag == R + "item"
    assert dict(el.attrib) == {"jid": "romeo@example.net", "name": "Romeo",
                               "subscription": "to", "approved": "true"}
    assert [g.text for g in el.iter(R + "group")] == ["Friends", "Lovers"]
    pending = item_element(RosterItem("a@b", ask=True))
    assert dict(pending.attrib) == {"jid": "a@b", "subscription": "none", "ask": "subscribe"}


def test_removed_item_element() -> None:
    el = item_element(None, "a@b")
    assert dict(el.attrib) == {"jid": "a@b", "subscription": "remove"}
