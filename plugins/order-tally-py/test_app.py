"""order-tally's own tests: plain pytest, no host (`python -m pytest`)."""

from hookhost import HttpError, Response
from hookhost.testing import event, manifest, run

from app import WitWorld


def paid(**order):
    return event("shop.order.paid", json={"order_id": "o-1", "customer": "c-42", **order})


def test_it_subscribes_to_paid_orders():
    assert manifest(WitWorld)["subscriptions"] == ["shop.order.paid"]


def test_an_order_adds_to_the_customers_totals_and_is_announced():
    result = run(
        WitWorld,
        paid(total_cents=2500),
        kv={"customer:c-42": b'{"orders": 1, "lifetime_cents": 1000}'},
    )
    assert result.outcome == "ok", result.message
    assert result.kv_json("customer:c-42") == {"orders": 2, "lifetime_cents": 3500}
    [update] = result.emitted
    assert update.topic == "shop.customer.updated"
    assert update.idempotency_key == "tally-o-1"
    assert update.json() == {"customer": "c-42", "currency": "eur", "orders": 2, "lifetime_cents": 3500}
    assert result.logs[0].fields == {"customer": "c-42", "orders": "2"}


def test_a_first_order_is_posted_to_the_configured_url_with_a_stable_key():
    url = "https://hooks.example.com/orders"
    result = run(WitWorld, paid(total_cents=100), config={"notify_url": url}, http={f"POST {url}": Response(200)})
    assert result.outcome == "ok", result.message
    [call] = result.calls
    assert call.json() == {"text": "First order from c-42"}
    assert call.idempotency_key == "01J00000000000000000000000:handler:0"


def test_a_receipt_is_queued_to_be_sent_after_commit():
    url = "https://receipts.example.com/orders"
    result = run(WitWorld, paid(total_cents=700), config={"receipt_url": url})
    assert result.outcome == "ok", result.message
    assert result.calls == [], "nothing is sent during the attempt"
    [queued] = result.outbox
    assert queued.url == url
    assert queued.json() == {"order_id": "o-1", "customer": "c-42", "total_cents": 700}
    assert queued.idempotency_key == "01J00000000000000000000000:handler:outbox:0"


def test_a_notify_that_fails_retries_and_commits_nothing():
    url = "https://hooks.example.com/orders"
    result = run(
        WitWorld, paid(), config={"notify_url": url}, http={url: HttpError("timeout", "no answer in 5 s")}
    )
    assert result.outcome == "retry"
    assert "timed" in result.message or "timeout" in result.message


def test_bad_input_is_rejected_and_pending_payment_retried():
    assert run(WitWorld, event("shop.order.paid", "not json")).outcome == "reject"
    assert run(WitWorld, paid(customer="")).outcome == "reject"
    assert run(WitWorld, paid(status="pending")).outcome == "retry"


def test_a_total_that_is_not_a_number_traps():
    result = run(WitWorld, paid(total_cents="lots"))
    assert result.outcome == "trap"
    assert "ValueError" in result.message
