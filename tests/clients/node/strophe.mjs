// Strophe.js 5 in Node.js (ws and @xmldom/xmldom stand in for the browser, xhr2 for BOSH),
// driven by a Python test over the line protocol of driver.mjs.
//
// ops: connect {service, domain, username, password, resource} -> {jid, mechanism}
//      message {to, body, type}, presence {to, type, muc}, roster_get -> {xml},
//      roster_set {jid, name} -> {xml}, disconnect
// events: stanza {xml} for every stanza received, status {status, condition}.
// As an application on Strophe does, it answers roster pushes and pings itself.

import { $iq, $msg, $pres, Strophe } from "strophe.js";
import XHR from "xhr2";

import { emit, serve } from "./driver.mjs";

// Strophe's BOSH transport needs an XMLHttpRequest, which Node lacks. A browser's parses a
// text/xml response into responseXML; xhr2's does not, and Strophe 5.0.0 then drops the
// document it parses itself (Request.getResponse returns the missing responseXML).
class BrowserXHR extends XHR {
  get responseXML() {
    if (this.readyState !== 4 || !this.responseText) return null;
    return new DOMParser().parseFromString(this.responseText, "text/xml");
  }
}
globalThis.XMLHttpRequest = BrowserXHR;

const { Status, NS } = Strophe;
const STATUS = Object.fromEntries(Object.entries(Status).map(([name, code]) => [code, name]));
const ENDED = [Status.ERROR, Status.CONNFAIL, Status.AUTHFAIL, Status.CONNTIMEOUT, Status.DISCONNECTED];

let conn = null;
let ended = null; // resolves when the connection is over

function authMechanism(elem) {
  const auth = elem.nodeName === "auth" ? elem : elem.getElementsByTagName?.("auth")[0];
  return auth?.getAttribute("mechanism") ?? null;
}

function received(stanza) {
  emit("stanza", { xml: Strophe.serialize(stanza) });
  const type = stanza.getAttribute("type");
  const child = stanza.firstElementChild ?? stanza.getElementsByTagName("*")[0];
  const ns = child?.namespaceURI;
  if (stanza.nodeName === "iq" && (type === "set" && ns === NS.ROSTER || type === "get" && ns === "urn:xmpp:ping")) {
    conn.send($iq({ type: "result", id: stanza.getAttribute("id"), to: stanza.getAttribute("from") ?? undefined }));
  }
  return true; // keep the handler
}

function connect({ service, domain, username, password, resource }) {
  conn = new Strophe.Connection(service);
  let mechanism = null;
  conn.xmlOutput = (elem) => {
    mechanism = authMechanism(elem) ?? mechanism;
  };
  conn.addHandler(received);
  if (process.env.XMPP_TRACE) {
    conn.rawInput = (data) => emit("in", { data });
    conn.rawOutput = (data) => emit("out", { data });
  }
  let finish;
  ended = new Promise((resolve) => (finish = resolve));
  return new Promise((resolve, reject) => {
    conn.connect(`${username}@${domain}/${resource}`, password, (status, condition) => {
      emit("status", { status: STATUS[status], condition: condition ?? null });
      if (status === Status.CONNECTED) resolve({ jid: conn.jid, mechanism });
      if (ENDED.includes(status)) reject(new Error(`${STATUS[status]} ${condition ?? ""}`.trim()));
      if (status === Status.DISCONNECTED) finish();
    });
  });
}

function send(stanza) {
  conn.send(stanza);
  conn.flush();
  return {};
}

function iq(stanza) {
  return new Promise((resolve, reject) => {
    conn.sendIQ(stanza,
      (result) => resolve({ xml: Strophe.serialize(result) }),
      (error) => reject(new Error(error ? Strophe.serialize(error) : "iq timed out")),
      10000);
  });
}

serve({
  connect,
  message: ({ to, body, type = "chat" }) => send($msg({ to, type }).c("body").t(body)),
  presence: ({ to, type, muc }) => {
    const pres = $pres({ ...(to && { to }), ...(type && { type }) });
    return send(muc ? pres.c("x", { xmlns: NS.MUC }) : pres);
  },
  roster_get: () => iq($iq({ type: "get" }).c("query", { xmlns: NS.ROSTER })),
  roster_set: ({ jid, name }) => iq($iq({ type: "set" }).c("query", { xmlns: NS.ROSTER }).c("item", { jid, name })),
  disconnect: async () => {
    conn.disconnect("done");
    await ended;
    return {};
  },
});
