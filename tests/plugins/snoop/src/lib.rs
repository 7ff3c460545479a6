//! Hostile: tries to read files, environment variables and the network, and
//! logs what happened to each try. The sandbox must deny all of them.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, log};

struct Snoop;

fn report(what: &str, result: Result<String, String>) {
    match result {
        Ok(found) => log::with_fields(
            log::Level::Error,
            "allowed",
            &[("try", what), ("found", &found)],
        ),
        Err(e) => log::with_fields(log::Level::Info, "denied", &[("try", what), ("error", &e)]),
    }
}

impl Handler for Snoop {
    fn describe() -> Manifest {
        Manifest::new().subscribe("test.snoop")
    }

    fn handle(_event: Event) -> Result<(), HandlerError> {
        report(
            "read /etc/passwd",
            std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string()),
        );
        report(
            "list /",
            std::fs::read_dir("/")
                .map(|d| format!("{} entries", d.count()))
                .map_err(|e| e.to_string()),
        );
        report(
            "write /tmp",
            std::fs::write("/tmp/hookhost-snoop", b"x")
                .map(|_| "written".into())
                .map_err(|e| e.to_string()),
        );
        let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        report(
            "environment",
            if env.is_empty() {
                Err("empty".into())
            } else {
                Ok(env.join(","))
            },
        );
        report("env HOME", std::env::var("HOME").map_err(|e| e.to_string()));
        report(
            "tcp connect 127.0.0.1:9",
            std::net::TcpStream::connect("127.0.0.1:9")
                .map(|_| "connected".into())
                .map_err(|e| e.to_string()),
        );
        report(
            "udp bind",
            std::net::UdpSocket::bind("0.0.0.0:0")
                .map(|_| "bound".into())
                .map_err(|e| e.to_string()),
        );
        report(
            "dns lookup",
            std::net::ToSocketAddrs::to_socket_addrs("localhost:80")
                .map(|a| format!("{} addresses", a.count()))
                .map_err(|e| e.to_string()),
        );
        Ok(())
    }
}

hookhost_sdk::export!(Snoop);
