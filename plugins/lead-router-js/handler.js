// @ts-check
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
// - With `crm_url` configured, the lead is also posted there, with the
//   host's stable idempotency key (a retry does not create it twice).
// - With `alert_url` configured, an alert about the lead is queued in the
//   outbox: the host posts it once the attempt commits, and retries it on
//   its own if the receiver is down, under one idempotency key.
//
// Build (from the repository root): componentize-js --wit wit --world-name handler --out lead-router.wasm plugins/lead-router-js/handler.js
// Test (no host): node --import ../../sdk/js/register.js --test

import { handler, Reject, Retry, config, emitJson, http, kv, log } from "../../sdk/js/index.js";

// `Lead`, generated from contracts/form-lead.schema.json: the contract the host
// checks `form.submitted` bodies against (see the README). `tsc --checkJs`
// holds this file to it.
/** @typedef {import("./contracts").Lead} Lead */

export const { describe, handle } = handler({
  subscriptions: ["form.submitted"],
  retry: { maxAttempts: 5, initialBackoffMs: 1000, maxBackoffMs: 60000 },

  handle(event) {
    /** @type {Lead} */
    const lead = event.json();
    const email = typeof lead?.email === "string" ? lead.email.trim().toLowerCase() : "";
    const at = email.indexOf("@");
    if (at < 1 || at === email.length - 1) {
      throw new Reject("a lead needs a valid email");
    }
    if (lead.captcha === "pending") {
      throw new Retry(`the captcha check for ${email} has not answered yet`);
    }

    // An uncaught TypeError here (a message that is not text) traps.
    const summary = (lead.message ?? "").trim().slice(0, 200);

    const domain = email.slice(at + 1);
    const count = kv.increment(`domain:${domain}`);

    const owner = config.get("owner", "sales");
    const created = { email, name: lead.name ?? "", domain, summary, owner, leads_from_domain: count };
    const crm = config.get("crm_url");
    if (crm) {
      const answer = http.postJson(crm, created);
      if (!answer.ok) throw new Retry(`the CRM answered ${answer.status}`);
    }
    const alert = config.get("alert_url");
    if (alert) http.postJsonAfterCommit(alert, { text: `New lead from ${domain}: ${summary}` });
    emitJson("crm.lead.created", created, `lead-${event.id}`);
    log.info("lead routed", { domain, count: String(count) });
  },
});
