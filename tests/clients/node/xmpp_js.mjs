// @xmpp/client (xmpp.js) in Node.js: TCP with STARTTLS (xmpp://), direct TLS (xmpps://) or
// WebSocket (ws://), driven by a Python test over the line protocol of driver.mjs.
// The server's certificate is checked: the test names it in NODE_EXTRA_CA_CERTS.
//
// ops: connect {service, domain, username, password, resource} -> {jid, mechanism, sasl, tls}
//      message {to, body, type}, presence {to, type, muc}, roster_get -> {xml},
//      roster_set {jid, name} -> {xml}, disconnect
// events: stanza {xml} for every stanza received, status {status}, error {error}.
// The client answers roster pushes (and, by itself, pings).

import { client, xml } from "@xmpp/client";
import WebSocket from "ws";

import { describe, emit, serve } from "./driver.mjs";

globalThis.WebSocket ??= WebSocket; // Node 20 has no WebSocket unless --experimental-websocket

const ROSTER = "jabber:iq:roster";
const MUC = "http://jabber.org/protocol/muc";

let xmpp = null;

async function connect({ service, domain, username, password, resource }) {
  xmpp = client({ service, domain, username, password, resource });
  xmpp.reconnect.stop(); // a test wants to see a connection end, not a new one
  let mechanism = null;
  let sasl = null;
  xmpp.on("send", (el) => {
    if (el.is("auth") || el.is("authenticate")) {
      mechanism = el.attrs.mechanism;
      sasl = el.name === "auth" ? "SASL" : "SASL2";
    }
  });
  xmpp.on("stanza", (stanza) => emit("stanza", { xml: stanza.toString() }));
  xmpp.on("status", (status) => emit("status", { status }));
  xmpp.on("error", (error) => emit("error", { error: describe(error) }));
  if (process.env.XMPP_TRACE) {
    xmpp.on("element", (el) => emit("in", { data: el.toString() }));
    const write = xmpp.write.bind(xmpp);
    xmpp.write = (data) => {
      emit("out", { data });
      return write(data);
    };
  }
  xmpp.iqCallee.set(ROSTER, "query", () => true);
  // Online is the "online" event, as for applications: start() may reject with a TimeoutError
  // 2 s after the session came online, when the server's stream header arrived before the
  // write callback of the client's own (Connection.open() listens only after it; over TLS).
  const online = new Promise((resolve) => xmpp.once("online", resolve));
  const started = xmpp.start().then(() => null, (err) => err);
  const address = await Promise.race([online, started.then((err) => {
    if (err) throw err;
    return online;
  })]);
  const tls = xmpp.socket?.socket?.getProtocol?.() ?? null; // after STARTTLS or direct TLS
  return { jid: address.toString(), mechanism, sasl, tls };
}

async function send(stanza) {
  await xmpp.send(stanza);
  return {};
}

async function iq(type, child) {
  const result = await xmpp.iqCaller.request(xml("iq", { type }, child), 10000);
  return { xml: result.toString() };
}

serve({
  connect,
  message: ({ to, body, type = "chat" }) => send(xml("message", { to, type }, xml("body", {}, body))),
  presence: ({ to, type, muc }) => send(xml("presence", { to, type }, muc ? xml("x", { xmlns: MUC }) : null)),
  roster_get: () => iq("get", xml("query", { xmlns: ROSTER })),
  roster_set: ({ jid, name }) => iq("set", xml("query", { xmlns: ROSTER }, xml("item", { jid, name }))),
  disconnect: async () => {
    await xmpp.stop();
    return {};
  },
});
