//! Sending one allowed outbound request: resolve its host, keep only the
//! addresses a handler may reach, connect to one of those, then TLS and
//! HTTP/1.1.
//!
//! # Invariant
//! The address checked is the address connected to: the name is resolved
//! once, here, so a name that answers a public address to a check and
//! 127.0.0.1 to the connect (DNS rebinding) reaches nothing it should not.
//! A name may lead only to a public address; loopback, private, link-local
//! (cloud metadata at 169.254.169.254 among them) and other special ranges
//! are refused unless `allowed_hosts` names the IP address itself.

use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Why a request was not sent or did not complete.
#[derive(Debug)]
pub enum SendError {
    /// The host resolved only to addresses a handler may not reach.
    Refused(String),
    Failed(Error),
}

impl From<Error> for SendError {
    fn from(e: Error) -> Self {
        SendError::Failed(e)
    }
}

/// The response, and the connection's I/O to drive while its body is read.
pub type Sent = (
    http::Response<WasiBody>,
    std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
);

/// Sends `request` (already allowed by `allowed_hosts`) within `options`'
/// timeouts.
pub async fn send(
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Result<Sent, SendError> {
    let uri = request.uri().clone();
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(600));
    let first_byte_timeout = options
        .first_byte_timeout
        .unwrap_or(Duration::from_secs(600));

    let address = tokio::time::timeout(connect_timeout, reachable_address(&host, port))
        .await
        .map_err(|_| Error::DnsTimeout)??;
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let stream: Box<dyn Stream> = if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        let stream = tokio::time::timeout(connect_timeout, connector.connect(name, stream))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(stream)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)?
    .map_err(Error::from)?;

    // Origin form on the wire: the authority goes in `Host`, not the path.
    if !request.headers().contains_key(http::header::HOST)
        && let Some(authority) = uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().insert(http::header::HOST, value);
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

    // The connection's I/O is driven beside the request until the response
    // head arrives, then by the caller while the body is read.
    let mut connection = Some(Box::pin(connection));
    let head = async {
        let mut send = std::pin::pin!(sender.send_request(request));
        loop {
            let Some(io) = connection.as_mut() else {
                break send.await.map_err(Error::from);
            };
            tokio::select! {
                response = &mut send => break response.map_err(Error::from),
                ended = io.as_mut() => {
                    connection = None;
                    ended.map_err(Error::from)?;
                }
            }
        }
    };
    let response = tokio::time::timeout(first_byte_timeout, head)
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io = async move {
        match connection {
            Some(io) => io.await.map_err(Error::from),
            None => Ok(()),
        }
    };
    Ok((response, Box::pin(io)))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The first address of `host` a handler may reach: an IP address given as
/// the host itself (the allow-list then named it), or a public address the
/// name resolves to.
async fn reachable_address(host: &str, port: u16) -> Result<SocketAddr, SendError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?
        .collect();
    if let Some(public) = resolved.iter().find(|a| is_public(a.ip())) {
        return Ok(*public);
    }
    match resolved.first() {
        Some(address) => Err(SendError::Refused(format!(
            "{host} resolves to {}, which handlers may not reach by name; \
             put the address itself in allowed_hosts to allow it",
            address.ip()
        ))),
        None => Err(Error::DestinationNotFound.into()),
    }
}

/// Whether `ip` is an ordinary public address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || first & 0xfe00 == 0xfc00 // unique local fc00::/7
                || first & 0xffc0 == 0xfe80 // link-local fe80::/10
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 64:ff9b::/96
                || first == 0x2002 // 6to4
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// The TLS client settings: the web's root certificates, built once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .ok()
        })
        .clone()
        .ok_or(Error::TlsProtocolError)
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_ordinary_public_addresses_are_reachable_by_name() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }
}
