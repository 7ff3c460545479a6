// __NAME__'s own tests: `npm test` (Node's test runner), no host needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { event, manifest, run, HttpError, Response } from "./hookhost/testing.js";
import * as plugin from "./handler.js";

test("it subscribes to orders", () => {
  assert.deepEqual(manifest(plugin).subscriptions, ["shop.order.*"]);
});

test("an order adds its amount to the total", () => {
  const result = run(plugin, event("shop.order.created", { json: { amount: 7 } }), { kv: { total: "5" } });
  assert.equal(result.outcome, "ok", result.message);
  assert.equal(result.kvJson("total"), 12);
  assert.deepEqual(result.logs[0].fields, { topic: "shop.order.created", total: "12" });
});

test("a bad amount is rejected", () => {
  const result = run(plugin, event("shop.order.created", { json: { amount: 0 } }));
  assert.equal(result.outcome, "reject");
  assert.equal(result.kv.size, 0);
});

test("the total is posted when configured", () => {
  const url = "https://hooks.example.com/totals";
  const result = run(plugin, event("shop.order.created", { json: { amount: 3 } }), {
    config: { notify_url: url },
    http: { [`POST ${url}`]: new Response(200) },
  });
  assert.equal(result.outcome, "ok", result.message);
  assert.deepEqual(result.calls[0].json(), { topic: "shop.order.created", total: 3 });
});

test("a notify_url that fails retries", () => {
  const url = "https://hooks.example.com/totals";
  const result = run(plugin, event("shop.order.created", { json: { amount: 3 } }), {
    config: { notify_url: url },
    http: { [url]: new HttpError("failed", "connection refused") },
  });
  assert.equal(result.outcome, "retry");
});
