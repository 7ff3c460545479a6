// __NAME__: a Hookhost handler in JavaScript.
//
// Adds up the `amount` of every `shop.order.*` event in kv and, when the
// operator configures `notify_url`, posts each new total there.
//
// Build: npm run build      Test: npm test   (no host needed)
// The built component, in the sandbox, offline: hookhost test __NAME__.wasm cases

import { handler, Reject, Retry, config, http, kv, log } from "./hookhost/index.js";

export const { describe, handle } = handler({
  subscriptions: ["shop.order.*"],

  handle(event) {
    const order = event.json();
    const amount = order?.amount;
    if (!Number.isInteger(amount) || amount <= 0) {
      throw new Reject("amount must be a positive integer"); // dead letter
    }
    const total = kv.increment("total", amount); // committed only if this attempt succeeds
    const notify = config.get("notify_url");
    if (notify) {
      // Carries a stable Idempotency-Key: a retry does not notify twice.
      const answer = http.postJson(notify, { topic: event.topic, total });
      if (!answer.ok) throw new Retry(`notify_url answered ${answer.status}`);
    }
    log.info("order added", { topic: event.topic, total: String(total) });
  },
});
