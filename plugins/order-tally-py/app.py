"""order-tally: a Hookhost handler in Python.

Keeps each customer's lifetime spend from `shop.order.paid` events and emits
`shop.customer.updated` with the new totals.

    {"order_id": "o-1", "customer": "c-42", "total_cents": 2500, "currency": "eur"}

- A body that is not JSON, or has no customer or order id, is rejected: no
  retry will fix it, so it goes to the dead letters.
- `"status": "pending"` asks for a retry: the payment has not settled yet.
- Anything else unexpected (a `total_cents` that is not a number) raises an
  uncaught exception: the attempt traps and the traceback is in its stderr.
- With `notify_url` configured (a secret), each customer's first order is
  posted there; the call carries the host's stable idempotency key, so a
  retried attempt does not notify twice at an API that honours it.
- With `receipt_url` configured, a receipt for every order is queued in the
  outbox: the host posts it once the attempt commits, and retries it on its
  own if the receiver is down, under one idempotency key.

Build: componentize-py -d ../../wit -w handler componentize app -p . -p ../../sdk/python -o order-tally.wasm
Test:  python -m pytest   (no host needed)
"""

from hookhost import Event, Handler, Reject, Retry, RetryPolicy, config, emit_json, http, kv, log

# `PaidOrder`, a TypedDict generated from contracts/shop-order.schema.json, the
# contract the host checks `shop.order.paid` bodies against (see the README).
from contracts import PaidOrder


class WitWorld(Handler):
    subscriptions = ["shop.order.paid"]
    retry = RetryPolicy(max_attempts=5, initial_backoff_ms=1_000, max_backoff_ms=60_000)

    def handle(self, event: Event) -> None:
        order: PaidOrder = event.json()
        if not isinstance(order, dict) or not order.get("customer") or not order.get("order_id"):
            raise Reject("an order needs a customer and an order_id")
        if order.get("status") == "pending":
            raise Retry(f"payment for {order['order_id']} has not settled yet")

        # An uncaught ValueError here (a total that is not a number) traps.
        cents = int(order.get("total_cents", 0))
        customer = order["customer"]

        key = f"customer:{customer}"
        totals = kv.get_json(key, {"orders": 0, "lifetime_cents": 0})
        totals["orders"] += 1
        totals["lifetime_cents"] += cents
        kv.set_json(key, totals)

        notify = config.get("notify_url")
        if notify and totals["orders"] == 1:
            answer = http.post_json(notify, {"text": f"First order from {customer}"})
            if not answer.ok:
                raise Retry(f"notify answered {answer.status}")

        currency = order.get("currency") or config.get("currency", "eur")
        receipt = config.get("receipt_url")
        if receipt:
            http.post_json_after_commit(
                receipt, {"order_id": order["order_id"], "customer": customer, "total_cents": cents}
            )
        emit_json(
            "shop.customer.updated",
            {"customer": customer, "currency": currency, **totals},
            idempotency_key=f"tally-{order['order_id']}",
        )
        log.info("order tallied", customer=customer, orders=totals["orders"])
