//! For tests: a database of its own on a real PostgreSQL server.
//!
//! The server is `$HOOKHOST_TEST_POSTGRES` (a URL whose user may create
//! databases), by default `postgres://hookhost:hookhost@127.0.0.1:5432/postgres`,
//! which `.ci/run` sets up. When no server answers, tests that need one say
//! so and pass, unless `$HOOKHOST_REQUIRE_POSTGRES` is set (as in CI): then
//! they fail.

const DEFAULT_SERVER: &str = "postgres://hookhost:hookhost@127.0.0.1:5432/postgres";

/// A fresh, empty database, dropped (with its connections) when this is.
pub struct TestDatabase {
    /// The server's URL, as given.
    pub server: String,
    /// The database's name.
    pub name: String,
    /// Its connection URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates a database for one test; `None` when there is no server and
    /// none is required.
    pub async fn create() -> Option<Self> {
        let server =
            std::env::var("HOOKHOST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let required = std::env::var_os("HOOKHOST_REQUIRE_POSTGRES").is_some();
        let client = match connect(&server).await {
            Ok(client) => client,
            Err(e) if required => {
                panic!("no PostgreSQL server at {server} and HOOKHOST_REQUIRE_POSTGRES is set: {e}")
            }
            Err(e) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!(
                        "skipped: no PostgreSQL server at {server} ({e}); set HOOKHOST_TEST_POSTGRES"
                    );
                }
                return None;
            }
        };
        let name = format!(
            "hookhost_test_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database on {server}: {e}"));
        let base = server.split('?').next().unwrap_or(&server);
        let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
        let url = format!("{prefix}/{name}");
        Some(Self { server, name, url })
    }
}

/// A plain connection, for what a test does around the store.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside any runtime's reach: a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = connect(&server).await.ok()?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            tracing::warn!(database = %self.name, "could not drop a test database");
        }
    }
}
