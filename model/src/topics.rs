//! Topic patterns and topic names.

/// Whether a topic pattern (`*` = any run of characters) matches a topic.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = topic.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks a topic: 1–200 characters of `a-z A-Z 0-9 . _ -`.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 200 {
        return Err(format!(
            "topic must be 1 to 200 characters, got {}",
            topic.len()
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic {topic:?} contains {c:?}: allowed are a-z, A-Z, 0-9, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Topics only one route may produce: a configured source's (through its
/// signed `/hooks/{source}`), or the scheduler's (`schedule.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// A topic pattern (`stripe.*`, or one topic).
    pub pattern: String,
    /// The source's name; `None`: the scheduler.
    pub source: Option<String>,
}

impl Reserved {
    /// Why `topic` cannot arrive any other way, for an error message.
    pub fn explain(&self, topic: &str) -> String {
        match &self.source {
            Some(source) => format!(
                "topic {topic} belongs to source {source}: it arrives only through \
                 /hooks/{source}, where its signature is checked"
            ),
            None => {
                format!("topic {topic} belongs to the scheduler: only a schedule's tick makes it")
            }
        }
    }
}

/// Whether `topic` may arrive through `route`: `None` for
/// `POST /events/{topic}` and emitted events, `Some(source)` for that
/// source's hook. Else the reservation that refuses it.
pub fn refusal<'a>(
    reserved: &'a [Reserved],
    topic: &str,
    route: Option<&str>,
) -> Option<&'a Reserved> {
    let owners = || reserved.iter().filter(|r| topic_matches(&r.pattern, topic));
    if route.is_some_and(|source| owners().any(|r| r.source.as_deref() == Some(source))) {
        return None;
    }
    owners().next()
}

/// Whether `name` is a valid plugin name: `[a-z0-9][a-z0-9-]*`, at most 64.
pub fn valid_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_the_design_says() {
        let cases = [
            ("stripe.*", "stripe.payment_intent.succeeded", true),
            ("stripe.*", "stripe.", true),
            ("stripe.*", "stripes.x", false),
            ("github.push", "github.push", true),
            ("github.push", "github.push.x", false),
            ("*", "anything.at.all", true),
            ("*.succeeded", "stripe.payment_intent.succeeded", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
        ];
        for (pattern, topic, want) in cases {
            assert_eq!(topic_matches(pattern, topic), want, "{pattern} ~ {topic}");
        }
    }

    #[test]
    fn topics_are_validated() {
        assert!(validate_topic("stripe.payment_intent.succeeded").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("a/b").is_err());
        assert!(validate_topic(&"a".repeat(201)).is_err());
    }

    #[test]
    fn plugin_names_follow_the_design() {
        for good in ["stripe-ledger", "a", "x9"] {
            assert!(valid_plugin_name(good), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b"] {
            assert!(!valid_plugin_name(bad), "{bad}");
        }
    }
}
