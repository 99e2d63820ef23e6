"""The web app in a browser: group chats (XEP-0045 rooms, XEP-0249 invitations, MUC archives).

alice creates a group with a name and a description and invites her friend bob; bob accepts
the invitation; both see the members and their roles and talk; after a reload bob sees the
history. alice renames the group (both see it); bob leaves, declines a new invitation,
accepts the next one and is kicked by alice.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.steps import (
    befriend,
    chat,
    choose,
    exact,
    message,
    no_errors,
    open_group,
    send,
    show_groups,
    snap,
    tid,
    user_page,
)

OWNER = re.compile(r"owner|moderator", re.I)
MEMBER = re.compile(r"member|participant", re.I)


def group(page, room):
    return tid(tid(page, "groups"), "group", jid=room)


def member(page, nick_part):
    return tid(chat(page), "member").and_(page.locator(f'[data-nick*="{nick_part}" i]'))


async def show_members(page):
    members = tid(chat(page), "members")
    if not await members.is_visible():
        await tid(chat(page), "group-members-open").click()
    await expect(members).to_be_visible()
    return members


async def invite(page, jid):
    await tid(chat(page), "group-invite-open").click()
    await choose(tid(page, "invite-jid"), jid)
    await tid(page, "invite-submit").click()


async def accept_invitation(page, room, inviter):
    await show_groups(page)
    invitation = tid(page, "invitation", room=room)
    await expect(invitation).to_be_visible()
    await expect(tid(invitation, "invitation-from")).to_contain_text(inviter)
    await tid(invitation, "invitation-accept").click()
    await expect(invitation).to_have_count(0)
    await expect(group(page, room)).to_be_visible()
    return await open_group(page, room)


async def test_group_lifecycle(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await user_page(open_app, web, "bob")
    await befriend(alice, "alice@localhost", bob, "bob@localhost")

    # alice creates the group
    await show_groups(alice)
    await tid(alice, "create-group-open").click()
    await tid(alice, "group-name").fill("Book club")
    await tid(alice, "group-description").fill("One book a month")
    await tid(alice, "create-group-submit").click()
    created = tid(tid(alice, "groups"), "group").filter(has_text="Book club")
    await expect(created).to_have_count(1)
    room = await created.get_attribute("data-jid")
    assert room and room.endswith("@conference.localhost"), room
    await expect(tid(group(alice, room), "group-name-label")).to_have_text(exact("Book club"))
    await open_group(alice, room)
    await expect(tid(chat(alice), "chat-title")).to_have_text(exact("Book club"))
    await expect(tid(chat(alice), "group-description-label")).to_have_text(
        exact("One book a month"))
    await expect(tid(chat(alice), "contact-remove")).to_have_count(0)

    # she invites bob, who accepts
    await invite(alice, "bob@localhost")
    await accept_invitation(bob, room, "alice")
    await expect(tid(chat(bob), "chat-title")).to_have_text(exact("Book club"))
    await expect(tid(chat(bob), "group-description-label")).to_have_text(
        exact("One book a month"))

    # both see both members and their roles; only alice may kick, and not herself
    for page in (alice, bob):
        members = await show_members(page)
        await expect(tid(members, "member")).to_have_count(2)
        await expect(tid(member(page, "alice"), "member-role")).to_have_text(OWNER)
        await expect(tid(member(page, "bob"), "member-role")).to_have_text(MEMBER)
        await expect(tid(member(page, "alice"), "member-kick")).to_have_count(0)
    await expect(tid(member(alice, "bob"), "member-kick")).to_be_visible()
    await expect(tid(member(bob, "bob"), "member-kick")).to_have_count(0)
    await expect(tid(chat(bob), "group-rename-open")).to_have_count(0)

    # they talk
    await send(alice, "Welcome to the book club")
    welcome = message(bob, "Welcome to the book club")
    await expect(welcome).to_have_count(1)
    await expect(tid(welcome, "message-sender")).to_contain_text("alice")
    await send(bob, "Thanks, glad to be here")
    answer = message(alice, "Thanks, glad to be here")
    await expect(answer).to_have_count(1)
    await expect(tid(answer, "message-sender")).to_contain_text("bob")
    await expect(message(alice, "Welcome to the book club")).to_have_count(1)  # no echo twice

    # after a reload bob is still in the group and sees its history
    await bob.reload()
    await expect(tid(bob, "screen-main")).to_be_visible()
    await open_group(bob, room)
    await expect(message(bob, "Welcome to the book club")).to_have_count(1)
    await expect(message(bob, "Thanks, glad to be here").and_(bob.locator(".mine"))
                 ).to_have_count(1)
    await expect(tid(message(bob, "Welcome to the book club"), "message-sender")
                 ).to_contain_text("alice")
    await snap(alice, "group-chat-members", quiet=True)

    # alice renames the group: both see the new name
    await tid(chat(alice), "group-rename-open").click()
    await tid(alice, "group-rename-input").fill("Readers")
    await tid(alice, "group-rename-submit").click()
    for page in (alice, bob):
        await expect(tid(chat(page), "chat-title")).to_have_text(exact("Readers"))
        await expect(tid(group(page, room), "group-name-label")).to_have_text(exact("Readers"))

    # bob leaves: gone from his list and from alice's members
    await tid(chat(bob), "group-leave").click()
    await show_groups(bob)
    await expect(group(bob, room)).to_have_count(0)
    members = await show_members(alice)
    await expect(tid(members, "member")).to_have_count(1)

    # invited again he first declines, then comes back; alice kicks him and he is told
    await invite(alice, "bob@localhost")
    await show_groups(bob)
    invitation = tid(bob, "invitation", room=room)
    await tid(invitation, "invitation-decline").click()
    await expect(invitation).to_have_count(0)
    await expect(group(bob, room)).to_have_count(0)
    await invite(alice, "bob@localhost")
    await accept_invitation(bob, room, "alice")
    await expect(message(bob, "Welcome to the book club")).to_have_count(1)
    members = await show_members(alice)
    await expect(tid(members, "member")).to_have_count(2)
    await tid(member(alice, "bob"), "member-kick").click()
    await expect(tid(members, "member")).to_have_count(1)
    await expect(tid(bob, "toast").filter(has_text=re.compile(r"kick|remov|踢|移出", re.I)).first
                 ).to_be_visible()
    await send(alice, "Only me now")
    await expect(message(bob, "Only me now")).to_have_count(0)
    await no_errors(alice, bob)
