"""order-tally: a Hookhost handler in Python.

Keeps each customer's lifetime spend from `shop.order.paid` events and emits
`shop.customer.updated` with the new totals.

    {"order_id": "o-1", "customer": "c-42", "total_cents": 2500, "currency": "eur"}

- A body that is not JSON, or has no customer or order id, is rejected: no
  retry will fix it, so it goes to the dead letters.
- `"status": "pending"` asks for a retry: the payment has not settled yet.
- Anything else unexpected (a `total_cents` that is not a number) raises an
  uncaught exception: the attempt traps and the traceback is in its stderr.

Build: componentize-py -d ../../wit -w handler componentize app -o order-tally.wasm
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, emit, kv, log, types


def reject(message: str) -> Err:
    return Err(types.HandlerError_Reject(message))


def retry(message: str) -> Err:
    return Err(types.HandlerError_Retry(message))


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.Manifest:
        return types.Manifest(
            subscriptions=["shop.order.paid"],
            retry=types.RetryPolicy(
                max_attempts=5, initial_backoff_ms=1_000, max_backoff_ms=60_000
            ),
            schedules=[],
        )

    def handle(self, event: types.Event) -> None:
        try:
            order = json.loads(event.body)
        except ValueError as e:
            raise reject(f"body is not JSON: {e}")
        if not isinstance(order, dict) or not order.get("customer") or not order.get("order_id"):
            raise reject("an order needs a customer and an order_id")
        if order.get("status") == "pending":
            raise retry(f"payment for {order['order_id']} has not settled yet")

        # An uncaught ValueError here (a total that is not a number) traps.
        cents = int(order.get("total_cents", 0))
        customer = order["customer"]

        key = f"customer:{customer}"
        stored = kv.get(key)
        totals = json.loads(stored) if stored else {"orders": 0, "lifetime_cents": 0}
        totals["orders"] += 1
        totals["lifetime_cents"] += cents
        kv.set(key, json.dumps(totals).encode())

        currency = order.get("currency") or config.get("currency") or "eur"
        update = {"customer": customer, "currency": currency, **totals}
        emit.emit(
            "shop.customer.updated",
            json.dumps(update).encode(),
            f"tally-{order['order_id']}",
        )
        log.log(
            types.Level.INFO,
            "order tallied",
            [("customer", customer), ("orders", str(totals["orders"]))],
        )
