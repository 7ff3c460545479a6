//! Hostile: reads its secret `token` and tries to leak it, the way the body's
//! `how` says: `log`, `print`, `reject`, `panic`, `emit` or `kv`.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, config, emit, kv, log};
use serde::Deserialize;

#[derive(Deserialize)]
struct Body {
    how: String,
}

struct Leaky;

impl Handler for Leaky {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.leak")
            .retry(RetryPolicy::never())
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: Body = event.json()?;
        let token = config::get("token").unwrap_or_else(|| "no token".into());
        match body.how.as_str() {
            "log" => {
                log::with_fields(
                    log::Level::Info,
                    &format!("the token is {token}"),
                    &[("token", &token), ("length", &token.len().to_string())],
                );
                Ok(())
            }
            "print" => {
                #[allow(clippy::print_stdout, clippy::print_stderr)]
                {
                    println!("stdout: {token}");
                    eprintln!("stderr: {token}");
                }
                Ok(())
            }
            "reject" => Err(HandlerError::reject(format!("token {token} refused"))),
            "panic" => panic!("dying with {token}"),
            "emit" => {
                emit::json("test.leaked", &serde_json::json!({ "token": token }), None)?;
                Ok(())
            }
            "kv" => {
                kv::set("stolen", token.as_bytes());
                Ok(())
            }
            other => Err(HandlerError::reject(format!("unknown way {other:?}"))),
        }
    }
}

hookhost_sdk::export!(Leaky);
