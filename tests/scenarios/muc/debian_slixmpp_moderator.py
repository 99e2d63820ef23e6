"""A moderator on Debian 12's slixmpp (1.8.3), whose xep_0425 plugin speaks XEP-0425 v0.2.

Run by ``test_moderation.py`` with the system's Python, not the suite's::

    /usr/bin/python3 debian_slixmpp_moderator.py PORT JID PASSWORD ROOM NICK STANZA-ID REASON

It logs in, enters the room, asks the room to retract the message with that stanza-id
(``<apply-to xmlns='urn:xmpp:fasten:0'><moderate xmlns='urn:xmpp:message-moderate:0'>``),
waits for the plugin's ``moderated_message`` event and prints what the plugin read from it as
one line of JSON. Exit status 0 when all of that happened, 1 otherwise (the reason on stderr).
"""

import asyncio
import json
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

TIMEOUT = 20


async def run(port: int, jid: str, password: str, room: str, nick: str, sid: str,
              reason: str) -> dict[str, object]:
    client = slixmpp.ClientXMPP(jid, password)
    for plugin in ("xep_0030", "xep_0045", "xep_0425"):
        client.register_plugin(plugin)
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE  # the test server's self-signed certificate
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    entered: asyncio.Future[None] = loop.create_future()
    moderated: asyncio.Future[slixmpp.Message] = loop.create_future()

    def on_failure(event: object) -> None:
        if not started.done():
            started.set_exception(ConnectionError(f"login failed: {event}"))

    def on_presence(pres: slixmpp.Presence) -> None:
        if str(pres["from"]) == f"{room}/{nick}" and not entered.done():
            if pres["type"] == "error":
                entered.set_exception(RuntimeError(f"cannot enter: {pres}"))
            elif pres["type"] != "unavailable":
                entered.set_result(None)

    client.add_event_handler("session_start", lambda _: started.done() or started.set_result(None))
    client.add_event_handler("failed_all_auth", on_failure)
    client.add_event_handler("connection_failed", on_failure)
    client.add_event_handler("presence", on_presence)
    client.add_event_handler("moderated_message",
                             lambda m: moderated.done() or moderated.set_result(m))
    client.connect(("127.0.0.1", port))
    try:
        await asyncio.wait_for(started, TIMEOUT)
        presence = client.make_presence(pto=f"{room}/{nick}")
        presence.xml.append(slixmpp.ET.Element("{http://jabber.org/protocol/muc}x"))
        presence.send()
        await asyncio.wait_for(entered, TIMEOUT)
        try:
            await client["xep_0425"].moderate(slixmpp.JID(room), sid, reason, timeout=TIMEOUT)
        except IqError as exc:
            return {"error": exc.iq["error"]["condition"]}
        except IqTimeout:
            return {"error": "timeout"}
        notice = await asyncio.wait_for(moderated, TIMEOUT)
        fastened = notice["apply_to"]
        return {
            "from": str(notice["from"]),
            "id": fastened["id"],
            "by": fastened["moderated"]["by"],
            "reason": fastened["moderated"]["reason"],
        }
    finally:
        client.disconnect()
        await asyncio.wait_for(client.disconnected, TIMEOUT)


def main(argv: list[str]) -> int:
    port, jid, password, room, nick, sid, reason = argv
    try:
        print(json.dumps(asyncio.run(run(int(port), jid, password, room, nick, sid, reason))))
    except Exception as exc:  # reported to the test, which shows stderr
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
