//! What the admin API refuses before its token is even looked at: requests a
//! web page in the operator's browser could make.
//!
//! A host on loopback without a token is reachable from every page the
//! operator visits. Two attacks follow, and each has its rule:
//! - **DNS rebinding**: a page on `evil.example` re-points its name at
//!   127.0.0.1 and reads `/events` as same-origin. Its requests carry
//!   `Host: evil.example`, so the admin API answers only requests whose
//!   `Host` is an IP address, `localhost`, or a name in `admin_hosts`.
//! - **Cross-site requests**: a page can send a POST without asking first
//!   (a "simple" request) only with no content type or a form or text one,
//!   and a browser names the page in `Origin`. So a request that changes
//!   state must carry a content type no page can send without asking the
//!   host first (`application/json`, or `application/wasm` /
//!   `application/octet-stream` for uploads), and an `Origin`, when
//!   present, must be the host itself.

use super::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The host names the admin API answers to besides IP addresses and
/// `localhost`, lowercase.
#[derive(Debug, Clone, Default)]
pub struct AdminHosts(pub Vec<String>);

/// Refuses admin requests from a foreign host name, a foreign page, or a
/// state change with a content type any page could send.
pub async fn admin_guard(
    State(hosts): State<Arc<AdminHosts>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check(&hosts, request.method(), request.headers())?;
    Ok(next.run(request).await)
}

fn check(hosts: &AdminHosts, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = header_str(headers, header::HOST).unwrap_or("");
    let name = host_name(host);
    if !name_allowed(hosts, &name) {
        return Err(ApiError::Forbidden(format!(
            "the admin api does not answer to host {host:?}; add it to admin_hosts"
        )));
    }
    if let Some(origin) = header_str(headers, header::ORIGIN)
        && !same_host(origin, host)
    {
        return Err(ApiError::Forbidden(format!(
            "the admin api refuses requests from pages of other origins ({origin})"
        )));
    }
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && !preflighted_type(header_str(headers, header::CONTENT_TYPE)) {
        return Err(ApiError::UnsupportedMediaType(
            "an admin request that changes state needs content-type: application/json".into(),
        ));
    }
    Ok(())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The host part of a `Host` value (`name:port`, `[v6]:port`), lowercase.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name_allowed(hosts: &AdminHosts, name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || hosts.0.iter().any(|allowed| allowed == name)
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port
/// as the request's `Host`.
fn same_host(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host.trim()))
}

/// Whether a browser must ask the host before sending this content type.
fn preflighted_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = super::ingest::media_type(content_type);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        || essence == "application/wasm"
        || essence == "application/octet-stream"
}

#[cfg(test)]
mod tests {
    use super::{AdminHosts, check};
    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
    use axum::response::IntoResponse as _;

    fn status(hosts: &[&str], method: Method, headers: &[(&'static str, &str)]) -> StatusCode {
        let hosts = AdminHosts(hosts.iter().map(|h| (*h).to_owned()).collect());
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        match check(&hosts, &method, &map) {
            Ok(()) => StatusCode::OK,
            Err(e) => e.into_response().status(),
        }
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn ip_addresses_localhost_and_configured_names_are_answered() {
        for host in ["127.0.0.1:8080", "[::1]:8080", "localhost:8080", "10.0.0.5"] {
            assert_eq!(
                status(&[], Method::GET, &[("host", host)]),
                StatusCode::OK,
                "{host}"
            );
        }
        let named = [("host", "hookhost.example.com")];
        assert_eq!(
            status(&["hookhost.example.com"], Method::GET, &named),
            StatusCode::OK
        );
    }

    #[test]
    fn a_rebound_name_is_refused() {
        for host in ["evil.example:8080", "localhost.evil.example", ""] {
            assert_eq!(
                status(&[], Method::GET, &[("host", host)]),
                StatusCode::FORBIDDEN,
                "{host:?}"
            );
        }
    }

    #[test]
    fn a_foreign_origin_is_refused_and_the_host_itself_is_not() {
        let foreign = [
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example"),
            JSON,
        ];
        assert_eq!(status(&[], Method::POST, &foreign), StatusCode::FORBIDDEN);
        let null = [("host", "127.0.0.1:8080"), ("origin", "null")];
        assert_eq!(status(&[], Method::GET, &null), StatusCode::FORBIDDEN);
        let own = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            JSON,
        ];
        assert_eq!(status(&[], Method::POST, &own), StatusCode::OK);
    }

    #[test]
    fn a_state_change_needs_a_type_no_page_sends_unasked() {
        let host = ("host", "127.0.0.1:8080");
        for simple in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let mut headers = vec![host];
            headers.extend(simple.map(|t| ("content-type", t)));
            assert_eq!(
                status(&[], Method::POST, &headers),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{simple:?}"
            );
        }
        for preflighted in ["application/json; charset=utf-8", "application/wasm"] {
            let headers = [host, ("content-type", preflighted)];
            assert_eq!(status(&[], Method::POST, &headers), StatusCode::OK);
        }
        assert_eq!(
            status(&[], Method::GET, &[host]),
            StatusCode::OK,
            "reads need no type"
        );
    }
}
