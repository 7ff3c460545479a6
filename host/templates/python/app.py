"""__NAME__: a Hookhost handler in Python.

Adds up the `amount` of every `shop.order.*` event in kv and, when the operator
configures `notify_url`, posts each new total there.

Build: componentize-py -d wit -w handler componentize app -o __NAME__.wasm
Test:  python -m pytest           (no host needed)
       hookhost test __NAME__.wasm cases   (the built component, in the sandbox, offline)
"""

from hookhost import Event, Handler, Reject, Retry, config, http, kv, log


class WitWorld(Handler):
    subscriptions = ["shop.order.*"]

    def handle(self, event: Event) -> None:
        order = event.json()
        amount = order.get("amount") if isinstance(order, dict) else None
        if not isinstance(amount, int) or amount <= 0:
            raise Reject("amount must be a positive integer")  # dead letter
        total = kv.increment("total", amount)  # committed only if this attempt succeeds
        notify = config.get("notify_url")
        if notify:
            # Carries a stable Idempotency-Key: a retry does not notify twice.
            answer = http.post_json(notify, {"topic": event.topic, "total": total})
            if not answer.ok:
                raise Retry(f"notify_url answered {answer.status}")
        log.info("order added", topic=event.topic, total=total)
