//! Signature schemes against published or independently computed vectors.

use super::*;
use crate::model::refusal;

fn source(kind: SourceKind, secret: &str, extra: impl FnOnce(&mut SourceConfig)) -> Source {
    let mut config = SourceConfig {
        secret_env: Some("SECRET".into()),
        ..SourceConfig::new(kind)
    };
    extra(&mut config);
    let secret = secret.to_owned();
    Source::resolve("src", &config, move |_| Some(secret.clone())).expect("valid source")
}

fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

// GitHub's documented example: secret "It's a Secret to Everybody",
// payload "Hello, World!".
const GITHUB_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[test]
fn github_documented_vector_verifies_and_derives_topic_and_key() {
    let s = source(SourceKind::Github, "It's a Secret to Everybody", |_| {});
    let h = [
        ("x-hub-signature-256", GITHUB_SIG),
        ("x-github-event", "ping"),
        ("x-github-delivery", "d-1"),
    ];
    let derived = s.verify(headers(&h), b"Hello, World!", 0).expect("valid");
    assert_eq!(
        derived,
        Derived {
            topic: "github.ping".into(),
            idempotency_key: Some("d-1".into())
        }
    );
}

#[test]
fn github_refuses_tampering_wrong_secrets_and_missing_headers() {
    let good = source(SourceKind::Github, "It's a Secret to Everybody", |_| {});
    let h = [
        ("x-hub-signature-256", GITHUB_SIG),
        ("x-github-event", "ping"),
    ];
    assert!(matches!(
        good.verify(headers(&h), b"Hello, World?", 0),
        Err(SourceError::Signature(_))
    ));
    let wrong = source(SourceKind::Github, "another secret", |_| {});
    assert!(matches!(
        wrong.verify(headers(&h), b"Hello, World!", 0),
        Err(SourceError::Signature(_))
    ));
    let none = [("x-github-event", "ping")];
    let err = good
        .verify(headers(&none), b"Hello, World!", 0)
        .expect_err("unsigned");
    assert_eq!(
        err,
        SourceError::Signature("missing x-hub-signature-256 header".into())
    );
}

#[test]
fn github_topic_adds_the_action_when_there_is_one() {
    let d = github_topic(Some("issues"), br#"{"action":"opened"}"#, None).expect("topic");
    assert_eq!(d.topic, "github.issues.opened");
    let d = github_topic(Some("push"), br#"{"ref":"main"}"#, None).expect("topic");
    assert_eq!(d.topic, "github.push");
}

// Computed with Python's hmac module from Stripe's documented scheme:
// hex(HMAC-SHA256(secret, "{t}.{payload}")).
const STRIPE_SECRET: &str = "whsec_test_secret_for_hookhost";
const STRIPE_PAYLOAD: &str = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":2500,"currency":"eur"}}}"#;
const STRIPE_T: u64 = 1_700_000_000;
const STRIPE_V1: &str = "741999cc0447a5bd77c62202f545173111ccbd9bd433385558e4eca6d12479e4";

#[test]
fn stripe_vector_verifies_among_several_signatures() {
    let s = source(SourceKind::Stripe, STRIPE_SECRET, |_| {});
    let header = format!(
        "t={STRIPE_T},v1={},v1={STRIPE_V1},v0=deadbeef",
        "00".repeat(32)
    );
    let h = [("stripe-signature", header.as_str())];
    let derived = s
        .verify(headers(&h), STRIPE_PAYLOAD.as_bytes(), STRIPE_T + 10)
        .expect("valid");
    assert_eq!(derived.topic, "stripe.payment_intent.succeeded");
    assert_eq!(derived.idempotency_key.as_deref(), Some("evt_1"));
}

#[test]
fn stripe_refuses_old_timestamps_and_tampered_bodies() {
    let s = source(SourceKind::Stripe, STRIPE_SECRET, |_| {});
    let header = format!("t={STRIPE_T},v1={STRIPE_V1}");
    let h = [("stripe-signature", header.as_str())];
    let late = s
        .verify(headers(&h), STRIPE_PAYLOAD.as_bytes(), STRIPE_T + 301)
        .expect_err("too late");
    assert!(late.to_string().contains("more than 300 s"), "{late}");
    let tampered = STRIPE_PAYLOAD.replace("2500", "25000");
    assert!(matches!(
        s.verify(headers(&h), tampered.as_bytes(), STRIPE_T),
        Err(SourceError::Signature(_))
    ));
}

// The Standard Webhooks reference library's test vector
// (tests/data/standard-webhooks/vectors.json).
#[test]
fn standard_webhooks_reference_vector_verifies() {
    let s = source(
        SourceKind::StandardWebhooks,
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        |c| {
            c.topic = Some("accounts.user".into());
        },
    );
    let h = [
        ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
        ("webhook-timestamp", "1649367553"),
        (
            "webhook-signature",
            "v1,bm90IGl0 v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ];
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let derived = s
        .verify(headers(&h), body, 1_649_367_553 - 299)
        .expect("valid");
    assert_eq!(
        derived.idempotency_key.as_deref(),
        Some("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk")
    );
    assert_eq!(derived.topic, "accounts.user");
    // Five minutes of tolerance both ways, not more.
    assert!(s.verify(headers(&h), body, 1_649_367_553 + 301).is_err());
    assert!(s.verify(headers(&h), body, 1_649_367_553 - 301).is_err());
}

#[test]
fn standard_webhooks_topic_can_come_from_a_json_pointer() {
    let s = source(SourceKind::Generic, "k", |c| {
        c.secret_env = None;
        c.topic_pointer = Some("/type".into());
        c.topic_prefix = "crm.".into();
    });
    let derived = s
        .verify(headers(&[]), br#"{"type":"contact.created"}"#, 0)
        .expect("valid");
    assert_eq!(derived.topic, "crm.contact.created");
    let err = s
        .verify(headers(&[]), br#"{"kind":1}"#, 0)
        .expect_err("no topic");
    assert!(matches!(err, SourceError::Malformed(_)));
}

#[test]
fn generic_hmac_uses_the_configured_header() {
    let s = source(SourceKind::Generic, "It's a Secret to Everybody", |c| {
        c.topic = Some("forms.submitted".into());
        c.signature_header = Some("X-Form-Signature".into());
    });
    let h = [("x-form-signature", GITHUB_SIG)];
    assert!(s.verify(headers(&h), b"Hello, World!", 0).is_ok());
    assert!(s.verify(headers(&[]), b"Hello, World!", 0).is_err());
}

#[test]
fn each_source_reserves_its_topics_for_its_own_hook() {
    let mut sources = BTreeMap::new();
    sources.insert("pay".to_owned(), SourceConfig::new(SourceKind::Stripe));
    sources.insert(
        "shop".to_owned(),
        SourceConfig {
            topic_pointer: Some("/type".into()),
            topic_prefix: "shop.".into(),
            ..SourceConfig::new(SourceKind::Generic)
        },
    );
    sources.insert(
        "forms".to_owned(),
        SourceConfig {
            topic: Some("form.submitted".into()),
            ..SourceConfig::new(SourceKind::Generic)
        },
    );
    sources.insert(
        "open".to_owned(),
        SourceConfig {
            topic_pointer: Some("/type".into()),
            ..SourceConfig::new(SourceKind::Generic)
        },
    );
    let reserved = reserved_topics(&sources);
    let owner = |topic: &str, route: Option<&str>| {
        refusal(&reserved, topic, route).map(|r| r.source.clone())
    };
    assert_eq!(
        owner("stripe.charge.refunded", None),
        Some(Some("pay".into()))
    );
    assert_eq!(owner("stripe.charge.refunded", Some("pay")), None);
    assert_eq!(
        owner("stripe.charge.refunded", Some("shop")),
        Some(Some("pay".into()))
    );
    assert_eq!(owner("shop.order.paid", None), Some(Some("shop".into())));
    assert_eq!(owner("form.submitted", None), Some(Some("forms".into())));
    assert_eq!(
        owner("form.submitted.twice", None),
        None,
        "a fixed topic is exact"
    );
    assert_eq!(
        owner("schedule.nightly", None),
        Some(None),
        "the scheduler's"
    );
    assert_eq!(owner("schedule.nightly", Some("open")), Some(None));
    assert_eq!(owner("orders.created", None), None);
    assert_eq!(owner("orders.created", Some("open")), None);
}

#[test]
fn setup_errors_name_the_source_and_never_the_secret() {
    let config = SourceConfig {
        secret_env: Some("SW_SECRET".into()),
        topic: Some("t".into()),
        ..SourceConfig::new(SourceKind::StandardWebhooks)
    };
    let unset = Source::resolve("billing", &config, |_| None).expect_err("unset");
    assert_eq!(
        unset.to_string(),
        "[sources.billing]: environment variable SW_SECRET is not set or empty"
    );
    let bad =
        Source::resolve("billing", &config, |_| Some("not-whsec-hunter2".into())).expect_err("bad");
    assert!(!bad.to_string().contains("hunter2"));
    let resolved =
        Source::resolve("billing", &config, |_| Some("whsec_aHVudGVyMg==".into())).expect("ok");
    assert!(
        !format!("{resolved:?}").contains("hunter2")
            && !format!("{resolved:?}").contains("aHVudGVyMg")
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const HEADERS: [&str; 8] = [
        "x-hub-signature-256",
        "x-github-event",
        "x-github-delivery",
        "stripe-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-signature",
    ];

    fn any_kind() -> impl Strategy<Value = SourceKind> {
        prop_oneof![
            Just(SourceKind::Github),
            Just(SourceKind::Stripe),
            Just(SourceKind::StandardWebhooks),
            Just(SourceKind::Generic),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn verify_never_panics_and_only_accepts_valid_topics(
            kind in any_kind(),
            headers in proptest::collection::vec((0..HEADERS.len(), "\\PC{0,64}"), 0..8),
            body in proptest::collection::vec(any::<u8>(), 0..256),
            now in any::<u64>(),
        ) {
            let s = source(kind, "whsec_c2VjcmV0", |c| c.topic = Some("t.x".into()));
            let pairs: Vec<(&str, &str)> = headers.iter().map(|(i, v)| (HEADERS[*i], v.as_str())).collect();
            if let Ok(derived) = s.verify(super::headers(&pairs), &body, now) {
                prop_assert!(crate::model::validate_topic(&derived.topic).is_ok());
            }
        }

        #[test]
        fn a_signed_body_verifies_and_any_changed_byte_breaks_it(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            flip in any::<prop::sample::Index>(),
        ) {
            let s = source(SourceKind::Github, "prop-secret", |_| {});
            let mut mac = HmacSha256::new_from_slice(b"prop-secret").expect("key");
            mac.update(&body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let h = [("x-hub-signature-256", signature.as_str()), ("x-github-event", "push")];
            prop_assert!(s.verify(super::headers(&h), &body, 0).is_ok());
            let mut changed = body.clone();
            changed[flip.index(body.len())] ^= 0x01;
            prop_assert!(matches!(s.verify(super::headers(&h), &changed, 0), Err(SourceError::Signature(_))));
        }
    }
}
