"""A scripted client on Debian 12's slixmpp 1.8.3 (``python3-slixmpp``), for the system Python.

Run as ``/usr/bin/python3 -I debian_slixmpp_client.py JID PASSWORD HOST PORT [--keepalive S]``:
isolated, so it imports the system's slixmpp and nothing of the project (only the standard
library and slixmpp here). It logs in over STARTTLS without checking the certificate, then
reads one JSON command per line on stdin and writes one JSON line per thing that happened
on stdout:

    {"op": "send", "seq": 3, "to": "alice@localhost", "body": "hi"}   (stdin)
    {"reply": 3, "ok": true}                                        (stdout)
    {"event": "message", "from": "alice@localhost/test", "body": "hello", ...}

Commands: ``send`` (to, body, type), ``presence``, ``subscribe`` (to), ``approve`` (to),
``roster``, ``join`` (room, nick), ``instant_room`` (room), ``ping`` (to: optional; without
it the plugin's own default, the server's domain), ``moderate`` (room, id, reason), ``quit``.
A failed command replies ``{"reply": N, "error": "<condition>"}``.
"""

import asyncio
import json
import logging
import os
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout, PresenceError

SID = "{urn:xmpp:sid:0}stanza-id"
DELAY = "{urn:xmpp:delay}delay"
PING = "{urn:xmpp:ping}ping"
TIMEOUT = 10

# slixmpp 1.8.3 prints to stdout while joining a room: our JSON lines get a stream of their own.
OUT = os.fdopen(os.dup(1), "w", buffering=1)
sys.stdout = sys.stderr


def emit(**fields):
    OUT.write(json.dumps(fields) + "\n")


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, keepalive):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for plugin in ("xep_0030", "xep_0045", "xep_0004", "xep_0203", "xep_0359", "xep_0425"):
            self.register_plugin(plugin)
        ping = {"keepalive": True, "interval": keepalive} if keepalive else {}
        self.register_plugin("xep_0199", pconfig=ping)
        self.auto_authorize = None  # a person decides: ``approve``
        self.auto_subscribe = False
        self.pings = set()
        self.add_filter("out", self._ping_out)
        self.add_filter("in", self._ping_in)
        for name in ("session_start", "failed_all_auth", "connection_failed", "disconnected",
                     "auth_success", "failed_auth", "message", "groupchat_message",
                     "presence", "roster_update", "moderated_message"):
            self.add_event_handler(name, getattr(self, "on_" + name))

    # What happened

    def on_session_start(self, _event):
        emit(event="session_start", jid=str(self.boundjid))

    def on_failed_all_auth(self, _event):
        emit(event="failed_all_auth")

    def on_connection_failed(self, error):
        emit(event="connection_failed", error=str(error))

    def on_disconnected(self, reason):
        emit(event="disconnected", reason=str(reason))

    def on_auth_success(self, _stanza):
        emit(event="sasl", mechanism=self["feature_mechanisms"].mech.name, result="success")

    def on_failed_auth(self, stanza):
        emit(event="sasl", mechanism=self["feature_mechanisms"].mech.name, result="failure",
             condition=stanza["condition"])

    def on_message(self, msg):
        if msg["type"] != "groupchat":
            emit(event="message", **self._message(msg))

    def on_groupchat_message(self, msg):
        emit(event="groupchat", nick=msg["mucnick"], **self._message(msg))

    def _message(self, msg):
        sid = msg.xml.find(SID)
        delay = msg.xml.find(DELAY)
        return {"from": str(msg["from"]), "type": msg["type"], "body": msg["body"],
                "id": msg["id"], "stanza_id": sid.get("id") if sid is not None else None,
                "stanza_id_by": sid.get("by") if sid is not None else None,
                "delay": delay.get("stamp") if delay is not None else None}

    def on_presence(self, pres):
        codes = sorted(pres["muc"]["status_codes"]) if pres.xml.find(
            "{http://jabber.org/protocol/muc#user}x") is not None else []
        emit(event="presence", **{"from": str(pres["from"]), "type": pres["type"],
                                  "codes": codes})

    def on_roster_update(self, iq):
        items = iq["roster"]["items"]
        emit(event="roster_push", items={str(j): dict(v) for j, v in items.items()})

    def on_moderated_message(self, msg):
        moderated = msg["apply_to"]["moderated"]
        emit(event="moderated", **{"from": str(msg["from"]), "id": msg["apply_to"]["id"],
                                   "by": moderated["by"], "reason": moderated["reason"]})

    def _ping_out(self, stanza):
        if stanza.name == "iq" and stanza.xml.find(PING) is not None:
            self.pings.add(stanza["id"])
            emit(event="ping_out", id=stanza["id"], to=str(stanza["to"]))
        return stanza

    def _ping_in(self, stanza):
        if stanza.name == "iq" and stanza["id"] in self.pings and stanza["type"] in (
                "result", "error"):
            self.pings.discard(stanza["id"])
            condition = stanza["error"]["condition"] if stanza["type"] == "error" else None
            emit(event="ping_reply", id=stanza["id"], type=stanza["type"],
                 condition=condition, **{"from": str(stanza["from"])})
        return stanza

    # Commands

    async def op_send(self, to, body, type="chat"):
        self.send_message(mto=to, mbody=body, mtype=type)

    async def op_presence(self):
        self.send_presence()

    async def op_subscribe(self, to):
        self.send_presence(pto=to, ptype="subscribe")

    async def op_approve(self, to):
        self.send_presence(pto=to, ptype="subscribed")

    async def op_roster(self):
        # With roster versioning (RFC 6121 §2.6) the result may be empty: what the client holds
        # is its cache plus the pushes since. Its own JID is there for its other resources.
        await self.get_roster(timeout=TIMEOUT)
        return {"items": {str(jid): self.client_roster[jid]["subscription"]
                          for jid in self.client_roster if jid != self.boundjid.bare}}

    async def op_join(self, room, nick):
        pres, _subject, occupants, _history = await self["xep_0045"].join_muc_wait(
            room, nick, maxstanzas=0, timeout=TIMEOUT)
        return {"codes": sorted(pres["muc"]["status_codes"]),
                "occupants": [str(p["from"]) for p in occupants]}

    async def op_instant_room(self, room):
        form = self["xep_0004"].make_form(ftype="submit")
        await self["xep_0045"].set_room_config(room, form, timeout=TIMEOUT)

    async def op_ping(self, to=None):
        # What the keepalive sends: ping() addresses the server's domain by default.
        rtt = await self["xep_0199"].ping(to, timeout=TIMEOUT)
        return {"rtt": rtt}

    async def op_moderate(self, room, id, reason=""):
        await self["xep_0425"].moderate(slixmpp.JID(room), id, reason, timeout=TIMEOUT)


async def commands(client):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        op, number = command.pop("op"), command.pop("seq")
        if op == "quit":
            break
        try:
            result = await getattr(client, "op_" + op)(**command)
        except IqError as exc:
            emit(reply=number, error=exc.iq["error"]["condition"])
        except PresenceError as exc:
            emit(reply=number, error=exc.presence["error"]["condition"])
        except (IqTimeout, TimeoutError):
            emit(reply=number, error="timeout")
        except Exception as exc:  # the test reads it instead of waiting for a reply
            emit(reply=number, error=repr(exc))
        else:
            emit(reply=number, ok=True, **(result or {}))


async def run(jid, password, host, port, keepalive):
    client = Client(jid, password, keepalive)
    emit(event="version", version=slixmpp.__version__)
    client.connect((host, port))  # STARTTLS, which the client requires
    try:
        await commands(client)
    finally:
        client.disconnect()
        await asyncio.wait_for(client.disconnected, TIMEOUT)


def main():
    jid, password, host, port, *options = sys.argv[1:]
    keepalive = int(options[options.index("--keepalive") + 1]) if "--keepalive" in options else 0
    if "--debug" in options:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    asyncio.run(run(jid, password, host, int(port), keepalive))


if __name__ == "__main__":
    main()
