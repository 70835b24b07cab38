//! One `postgres:17-alpine` container per process, when a Docker engine answers.
//!
//! testcontainers-rs removes a container when its handle is dropped, but a handle kept in
//! a static is never dropped, and unlike the Java/Go ports it has no Ryuk reaper of its
//! own. So we run Ryuk ourselves: it watches one TCP connection that this process holds
//! open until it exits, then removes every container carrying our session label.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::core::{IntoContainerPort, Mount};
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::sync::{OnceCell, oneshot};

const POSTGRES_TAG: &str = "17-alpine";
const RYUK_IMAGE: &str = "testcontainers/ryuk";
const RYUK_TAG: &str = "0.13.0";
const RYUK_PORT: u16 = 8080;
/// Every container we start carries this, for manual cleanup when Ryuk is unavailable.
const OWNER_LABEL: &str = "org.tenancy-rs.testing";
const SESSION_LABEL: &str = "org.tenancy-rs.testing.session";
/// Generous because the first run pulls images; an absent engine fails long before.
const START_TIMEOUT: Duration = Duration::from_secs(300);

struct Running {
    url: String,
    // Held only to be kept alive: the static is never dropped, so neither are these.
    _postgres: ContainerAsync<Postgres>,
    _reaper: Option<Reaper>,
    // The containers' Docker client lives on this runtime, not on the runtime of the test
    // that happened to start them, which ends with that test.
    _runtime: tokio::runtime::Runtime,
}

struct Reaper {
    _container: ContainerAsync<GenericImage>,
    _connection: TcpStream,
}

static CONTAINER: OnceCell<Option<Running>> = OnceCell::const_new();

/// The container's maintenance-database URL, starting the container on first use.
/// `None` (cached for the process) when Docker is unavailable.
pub(crate) async fn server_url() -> Option<&'static str> {
    CONTAINER
        .get_or_init(start)
        .await
        .as_ref()
        .map(|running| running.url.as_str())
}

async fn start() -> Option<Running> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("tenancy-testing-docker".to_owned())
        .spawn(move || start_on_own_runtime(tx));
    if let Err(e) = spawned {
        tracing::debug!("cannot spawn the Docker start thread: {e}");
        return None;
    }
    rx.await.ok().flatten()
}

fn start_on_own_runtime(tx: oneshot::Sender<Option<Running>>) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tenancy-testing-docker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::debug!("cannot build a runtime for Docker: {e}");
            let _ = tx.send(None);
            return;
        }
    };
    let started = runtime.block_on(async {
        match tokio::time::timeout(START_TIMEOUT, start_containers()).await {
            Ok(started) => started,
            Err(_) => Err(format!("no container after {START_TIMEOUT:?}")),
        }
    });
    match started {
        Ok((url, postgres, reaper)) => {
            let running = Running {
                url,
                _postgres: postgres,
                _reaper: reaper,
                _runtime: runtime,
            };
            if let Err(Some(unwanted)) = tx.send(Some(running)) {
                // The caller was cancelled. Container handles must be dropped inside a
                // runtime (their Drop removes the container asynchronously).
                let Running {
                    _postgres: postgres,
                    _reaper: reaper,
                    _runtime: runtime,
                    ..
                } = unwanted;
                runtime.block_on(async move { drop((postgres, reaper)) });
            }
        }
        Err(e) => {
            tracing::debug!("no PostgreSQL container (is a Docker engine running?): {e}");
            let _ = tx.send(None);
        }
    }
}

type Started = (String, ContainerAsync<Postgres>, Option<Reaper>);

async fn start_containers() -> Result<Started, String> {
    let session = format!("{}-{}", std::process::id(), crate::naming::unix_now());
    // PostgreSQL first: without an engine this is the call that fails, immediately.
    let postgres = Postgres::default()
        .with_tag(POSTGRES_TAG)
        .with_label(OWNER_LABEL, "true")
        .with_label(SESSION_LABEL, session.as_str())
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let host = postgres.get_host().await.map_err(|e| e.to_string())?;
    let port = postgres
        .get_host_port_ipv4(5432.tcp())
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("postgres://postgres:postgres@{host}:{port}/postgres");

    let reaper = if env_flag("TESTCONTAINERS_RYUK_DISABLED") {
        None
    } else {
        match start_reaper(&session).await {
            Ok(reaper) => Some(reaper),
            Err(e) => {
                tracing::warn!(
                    "Ryuk could not be started ({e}); container {} will outlive this process. \
                     Remove leftovers with `docker rm -f $(docker ps -aq --filter label={OWNER_LABEL})`",
                    postgres.id()
                );
                None
            }
        }
    };
    tracing::debug!(
        "using PostgreSQL container {} at {host}:{port}",
        postgres.id()
    );
    Ok((url, postgres, reaper))
}

async fn start_reaper(session: &str) -> Result<Reaper, String> {
    let socket = std::env::var("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE")
        .unwrap_or_else(|_| "/var/run/docker.sock".to_owned());
    let container = GenericImage::new(RYUK_IMAGE, RYUK_TAG)
        .with_exposed_port(RYUK_PORT.tcp())
        .with_mount(Mount::bind_mount(socket, "/var/run/docker.sock"))
        .with_privileged(env_flag("TESTCONTAINERS_RYUK_CONTAINER_PRIVILEGED"))
        .with_label(OWNER_LABEL, "true")
        // Ryuk exits once it has reaped; this makes Docker remove Ryuk itself too.
        .with_host_config_modifier(|config| config.auto_remove = Some(true))
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let host = container.get_host().await.map_err(|e| e.to_string())?;
    let port = container
        .get_host_port_ipv4(RYUK_PORT.tcp())
        .await
        .map_err(|e| e.to_string())?;
    // Blocking I/O is fine here: this runtime serves nothing but the Docker start.
    let connection = register_with_ryuk(&host.to_string(), port, session)
        .map_err(|e| format!("Ryuk handshake with {host}:{port} failed: {e}"))?;
    Ok(Reaper {
        _container: container,
        _connection: connection,
    })
}

/// Retries because Docker's port proxy accepts connections before Ryuk listens.
fn register_with_ryuk(host: &str, port: u16, session: &str) -> io::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match try_register(host, port, session) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() < deadline => {
                tracing::trace!("Ryuk not ready yet: {e}");
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => return Err(e),
        }
    }
}

fn try_register(host: &str, port: u16, session: &str) -> io::Result<TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut stream) => {
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.write_all(format!("label={SESSION_LABEL}={session}\n").as_bytes())?;
                let mut reply = String::new();
                BufReader::new(&stream).read_line(&mut reply)?;
                if reply.trim_end() != "ACK" {
                    return Err(io::Error::other(format!("unexpected reply {reply:?}")));
                }
                // From now on the connection only has to stay open.
                stream.set_read_timeout(None)?;
                return Ok(stream);
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"))
}
