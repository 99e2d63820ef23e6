// The line protocol between a Python test and a Node.js XMPP client (see node_client.py).
//
// stdin: one JSON command a line, {"id": 1, "op": "message", ...arguments}, run in order.
// stdout: one JSON event a line: {"event": "done", "id": 1, ...result} or
// {"event": "failed", "id": 1, "error": "..."} for each command, and whatever the client
// reports as it happens ({"event": "stanza", "xml": "<message .../>"}, "status", ...).
// The process exits when stdin closes and the last command has finished.

import { createInterface } from "node:readline";

// stdout is the protocol: what libraries log to the console goes to stderr.
console.log = console.info = console.debug = console.error;

export function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

// An Error, a stream or stanza error, or a connection failure tried on several addresses.
export function describe(err) {
  const parts = [err?.condition, err?.code, err?.message || String(err)];
  for (const inner of err?.errors ?? []) parts.push(`(${describe(inner)})`);
  return parts.filter(Boolean).join(" ");
}

export function serve(ops) {
  const lines = createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  lines.on("line", (line) => {
    const { id, op, ...args } = JSON.parse(line);
    chain = chain.then(async () => {
      try {
        if (!Object.hasOwn(ops, op)) throw new Error(`unknown op ${op}`);
        emit("done", { id, op, ...(await ops[op](args)) });
      } catch (err) {
        emit("failed", { id, op, error: describe(err) });
      }
    });
  });
  lines.on("close", () => chain.then(() => process.exit(0)));
}

