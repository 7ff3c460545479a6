// lead-router's own tests: Node's test runner, no host.
//   node --import ../../sdk/js/register.js --test
import { test } from "node:test";
import assert from "node:assert/strict";
import { event, run, manifest, HttpError, Response } from "../../sdk/js/testing.js";
import * as lead from "./handler.js";

const form = (fields) => event("form.submitted", { json: { email: "Ada@Example.com", name: "Ada", ...fields } });

test("it subscribes to submitted forms", () => {
  assert.deepEqual(manifest(lead).subscriptions, ["form.submitted"]);
});

test("a lead is counted per domain and announced", () => {
  const result = run(lead, form({ message: " Call me " }), { kv: { "domain:example.com": "2" } });
  assert.equal(result.outcome, "ok", result.message);
  assert.equal(result.kvJson("domain:example.com"), 3);
  const [created] = result.emitted;
  assert.equal(created.topic, "crm.lead.created");
  assert.equal(created.idempotencyKey, "lead-01J00000000000000000000000");
  assert.deepEqual(created.json(), {
    email: "ada@example.com",
    name: "Ada",
    domain: "example.com",
    summary: "Call me",
    owner: "sales",
    leads_from_domain: 3,
  });
  assert.deepEqual(result.logs[0].fields, { domain: "example.com", count: "3" });
});

test("a configured CRM gets the lead with a stable idempotency key", () => {
  const url = "https://crm.example.com/leads";
  const result = run(lead, form({}), { config: { crm_url: url }, http: { [`POST ${url}`]: new Response(201) } });
  assert.equal(result.outcome, "ok", result.message);
  const [call] = result.calls;
  assert.equal(call.json().email, "ada@example.com");
  assert.equal(call.idempotencyKey, "01J00000000000000000000000:handler:0");
});

test("an alert is queued to be sent after commit", () => {
  const url = "https://alerts.example.com/leads";
  const result = run(lead, form({ message: "Call me" }), { config: { alert_url: url } });
  assert.equal(result.outcome, "ok", result.message);
  assert.deepEqual(result.calls, [], "nothing is sent during the attempt");
  const [queued] = result.outbox;
  assert.equal(queued.url, url);
  assert.deepEqual(queued.json(), { text: "New lead from example.com: Call me" });
  assert.equal(queued.idempotencyKey, "01J00000000000000000000000:handler:outbox:0");
});

test("a CRM that cannot be reached retries and commits nothing", () => {
  const url = "https://crm.example.com/leads";
  const result = run(lead, form({}), { config: { crm_url: url }, http: { [url]: new HttpError("timeout", "no answer") } });
  assert.equal(result.outcome, "retry");
  assert.match(result.message, /timeout/);
});

test("bad input is rejected, a pending captcha retried, a bad message traps", () => {
  assert.equal(run(lead, event("form.submitted", { body: "not json" })).outcome, "reject");
  assert.equal(run(lead, form({ email: "nobody" })).outcome, "reject");
  assert.equal(run(lead, form({ captcha: "pending" })).outcome, "retry");
  const trap = run(lead, form({ message: 42 }));
  assert.equal(trap.outcome, "trap");
  assert.match(trap.message, /TypeError/);
});
