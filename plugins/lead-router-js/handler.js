// lead-router: a Hookhost handler in JavaScript.
//
// Turns `form.submitted` events into `crm.lead.created` events, counting
// leads per email domain in kv.
//
//     {"email": "ada@example.com", "name": "Ada", "message": "Call me"}
//
// - A body that is not JSON, or has no valid email, is rejected: it goes to
//   the dead letters.
// - `"captcha": "pending"` asks for a retry: the form's captcha check has
//   not answered yet.
// - Anything else unexpected (a `message` that is not text) throws an
//   uncaught exception: the attempt traps and the error is in its stderr.
//
// Build: componentize-js --wit ../../wit --world-name handler --out lead-router.wasm handler.js

import { get, set } from "hookhost:plugin/kv@0.2.0";
import { emit } from "hookhost:plugin/emit@0.2.0";
import { log } from "hookhost:plugin/log@0.2.0";
import { get as configGet } from "hookhost:plugin/config@0.2.0";

const text = new TextDecoder();
const bytes = new TextEncoder();

// A returned error is thrown as the WIT variant `handler-error`.
const reject = (message) => ({ tag: "reject", val: message });
const retry = (message) => ({ tag: "retry", val: message });

export function describe() {
  return {
    subscriptions: ["form.submitted"],
    retry: { maxAttempts: 5, initialBackoffMs: 1000n, maxBackoffMs: 60000n },
    schedules: [],
  };
}

export function handle(event) {
  let lead;
  try {
    lead = JSON.parse(text.decode(event.body));
  } catch (e) {
    throw reject(`body is not JSON: ${e.message}`);
  }
  const email = typeof lead?.email === "string" ? lead.email.trim().toLowerCase() : "";
  const at = email.indexOf("@");
  if (at < 1 || at === email.length - 1) {
    throw reject("a lead needs a valid email");
  }
  if (lead.captcha === "pending") {
    throw retry(`the captcha check for ${email} has not answered yet`);
  }

  // An uncaught TypeError here (a message that is not text) traps.
  const summary = (lead.message ?? "").trim().slice(0, 200);

  const domain = email.slice(at + 1);
  const key = `domain:${domain}`;
  const stored = get(key);
  const count = (stored ? Number(text.decode(stored)) : 0) + 1;
  set(key, bytes.encode(String(count)));

  const owner = configGet("owner") ?? "sales";
  const created = { email, name: lead.name ?? "", domain, summary, owner, leads_from_domain: count };
  emit("crm.lead.created", bytes.encode(JSON.stringify(created)), `lead-${event.id}`);
  log("info", "lead routed", [["domain", domain], ["count", String(count)]]);
}
