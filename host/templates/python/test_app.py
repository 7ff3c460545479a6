"""__NAME__'s own tests: `python -m pytest`, no host needed."""

from hookhost import HttpError, Response
from hookhost.testing import event, manifest, run

from app import WitWorld


def test_it_subscribes_to_orders():
    assert manifest(WitWorld)["subscriptions"] == ["shop.order.*"]


def test_an_order_adds_its_amount_to_the_total():
    result = run(WitWorld, event("shop.order.created", json={"amount": 7}), kv={"total": "5"})
    assert result.outcome == "ok", result.message
    assert result.kv_json("total") == 12
    assert result.logs[0].fields == {"topic": "shop.order.created", "total": "12"}


def test_a_bad_amount_is_rejected():
    result = run(WitWorld, event("shop.order.created", json={"amount": 0}))
    assert result.outcome == "reject"
    assert result.kv == {}


def test_the_total_is_posted_when_configured():
    url = "https://hooks.example.com/totals"
    result = run(
        WitWorld,
        event("shop.order.created", json={"amount": 3}),
        config={"notify_url": url},
        http={f"POST {url}": Response(200)},
    )
    assert result.outcome == "ok", result.message
    assert result.calls[0].json() == {"topic": "shop.order.created", "total": 3}


def test_a_notify_url_that_fails_retries():
    url = "https://hooks.example.com/totals"
    result = run(
        WitWorld,
        event("shop.order.created", json={"amount": 3}),
        config={"notify_url": url},
        http={url: HttpError("failed", "connection refused")},
    )
    assert result.outcome == "retry"
