//! Admin API: an actix-web service in front of a CURVE server, to trust and revoke client keys
//! and deny addresses while it runs, and to read its counters as JSON and as Prometheus
//! metrics.
//!
//! Run it with `cargo run --example admin_api --features serde,metrics` (flags:
//! `--http ADDR:PORT`, default `127.0.0.1:8080`; `--zmq ENDPOINT`, default
//! `tcp://127.0.0.1:5555`; a port of `0` or `*` takes a free one). It prints where it listens
//! and the server's public key, then answers:
//!
//! | request | what it does |
//! |---|---|
//! | `POST /keys` with `{"key": "Z85", "user_id": "optional"}` | trusts a client key |
//! | `DELETE /keys/{key}` (the Z85 text, percent-encoded) | revokes it |
//! | `POST /deny/{address}` (an address or CIDR range) | refuses that address |
//! | `DELETE /deny/{address}` | lifts that refusal |
//! | `GET /stats` | the authenticator's counters, as JSON |
//! | `GET /metrics` | the same and more, in Prometheus's text format |
//!
//! A revocation (`DELETE /keys/…`, `POST /deny/…`) is in force before the HTTP call answers:
//! the handle's call returns only once the policy actor has applied it, so the next handshake
//! is decided by it, and, because the server is a
//! [`SessionSocket`](actix_zap::sessions::SessionSocket), the connections the revoked key or
//! address had open are already ended too. Input that does not parse (a key that is not 40
//! characters of Z85, an address that is not one) answers `400` and changes nothing.
//!
//! Refusals are logged with the client's key (`client_key=…`, as pyzmq logs them): the key an
//! operator would trust is in the log. `RUST_LOG` overrides the default filter.
//!
//! ```text
//! curl -X POST localhost:8080/keys -H 'content-type: application/json' -d '{"key":"…"}'
//! curl localhost:8080/stats
//! ```

use std::time::Duration;

use actix_web::{delete, get, post, web, App, HttpResponse, HttpServer, Responder};
use actix_zap::certs::{CertStore, Certificate};
use actix_zap::keys::CurvePublicKey;
use actix_zap::policy::{AddressError, AddressPattern, CurveEntry};
use actix_zap::{Authenticator, ConfigError, ServerSocket};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The ZAP domain of the server socket; every key and rule here applies to it.
const DOMAIN: &str = "service";

/// What the handlers share.
struct Admin {
    auth: Authenticator,
    prometheus: PrometheusHandle,
}

/// The body of `POST /keys`. The key is parsed by its `Deserialize` impl (Z85, 40
/// characters): a bad one is refused by the extractor with `400` before the handler runs.
#[derive(Deserialize)]
struct NewKey {
    key: CurvePublicKey,
    /// The `User-Id` the server sees for this client (default: the key's Z85 text).
    user_id: Option<String>,
}

/// What the authenticator refused (`409`: e.g. a deny-list while an allow-list is in force)
/// or could not do (`503`: it is stopping), with its reason. A change refused changed
/// nothing.
fn failed(error: ConfigError) -> HttpResponse {
    let body = serde_json::json!({ "error": error.to_string() });
    match error {
        ConfigError::Policy(_) | ConfigError::Address(_) => HttpResponse::Conflict().json(body),
        _ => HttpResponse::ServiceUnavailable().json(body),
    }
}

fn bad_request(error: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({ "error": error.to_string() }))
}

#[post("/keys")]
async fn trust(admin: web::Data<Admin>, body: web::Json<NewKey>) -> impl Responder {
    let NewKey { key, user_id } = body.into_inner();
    let entry = CurveEntry {
        user_id,
        ..CurveEntry::new(key)
    };
    match admin.auth.add_curve_keys(DOMAIN, [entry]).await {
        Ok(added) => HttpResponse::Ok().json(serde_json::json!({ "trusted": key, "added": added })),
        Err(error) => failed(error),
    }
}

#[delete("/keys/{key}")]
async fn revoke(admin: web::Data<Admin>, key: web::Path<String>) -> impl Responder {
    let key = match key.parse::<CurvePublicKey>() {
        Ok(key) => key,
        Err(error) => return bad_request(error),
    };
    // Returns once no handshake is admitted under the key and its sessions have ended.
    match admin.auth.remove_curve_keys(DOMAIN, [key]).await {
        Ok(removed) => {
            HttpResponse::Ok().json(serde_json::json!({ "revoked": key, "removed": removed }))
        }
        Err(error) => failed(error),
    }
}

/// The address of a `/deny/…` path, checked before it reaches the authenticator, in the
/// form the authenticator's rules print it.
fn address(path: &str) -> Result<String, AddressError> {
    Ok(path.parse::<AddressPattern>()?.to_string())
}

// `.*`: a CIDR range has a `/` in it (`/deny/10.0.0.0/8`).
#[post("/deny/{address:.*}")]
async fn deny(admin: web::Data<Admin>, path: web::Path<String>) -> impl Responder {
    let address = match address(&path) {
        Ok(address) => address,
        Err(error) => return bad_request(error),
    };
    match admin.auth.deny([&address]).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "denied": address })),
        Err(error) => failed(error),
    }
}

#[delete("/deny/{address:.*}")]
async fn undeny(admin: web::Data<Admin>, path: web::Path<String>) -> impl Responder {
    let address = match address(&path) {
        Ok(address) => address,
        Err(error) => return bad_request(error),
    };
    match admin.auth.remove_addresses([&address]).await {
        Ok(removed) => {
            HttpResponse::Ok().json(serde_json::json!({ "undenied": address, "removed": removed }))
        }
        Err(error) => failed(error),
    }
}

#[get("/stats")]
async fn stats(admin: web::Data<Admin>) -> impl Responder {
    match admin.auth.stats().await {
        Ok(stats) => HttpResponse::Ok().json(stats),
        Err(error) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "error": error.to_string() })),
    }
}

#[get("/metrics")]
async fn metrics(admin: web::Data<Admin>) -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(admin.prometheus.render())
}

/// Echoes every request with "Hello, " and the client's `User-Id`, on a thread of its own.
/// Messages of revoked sessions never reach it: the session socket drops them.
fn serve(mut socket: actix_zap::sessions::SessionSocket) {
    std::thread::spawn(move || loop {
        let mut frames = match socket.recv_multipart(0) {
            Ok(frames) => frames,
            Err(error) => {
                log::error!("the CURVE server stops: {error}");
                return;
            }
        };
        // ROUTER: the peer's routing id, then what a DEALER sent.
        let body = frames.pop().unwrap_or_default();
        frames.push(format!("Hello, {}", String::from_utf8_lossy(&body)).into_bytes());
        if let Err(error) = socket.send_multipart(frames, 0) {
            // A peer revoked since (SessionError::Revoked) or gone: nothing to answer.
            log::debug!("no answer sent: {error}");
        }
    });
}

/// `--name value` from the command line, or `default`.
fn flag(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[actix_web::main]
async fn main() -> Result<()> {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,actix_zap::decision=debug"),
    )
    .init();
    // The recorder first: the authenticator describes its metrics when it starts.
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let context = zmq::Context::new();
    let auth = Authenticator::start(&context)?;
    // No key is trusted until one is posted.
    auth.configure_curve_keys(DOMAIN, CertStore::new()).await?;

    let server_cert = Certificate::generate()?;
    let secret = server_cert
        .secret_key
        .clone()
        .ok_or("no server secret key")?;
    let socket = ServerSocket::curve(DOMAIN, secret).build_sessions(&context, zmq::ROUTER)?;
    socket.bind(&flag("--zmq", "tcp://127.0.0.1:5555"))?;
    let endpoint = socket
        .raw()
        .get_last_endpoint()?
        .map_err(|_| "endpoint is not UTF-8")?;
    serve(socket);

    let admin = web::Data::new(Admin {
        auth: auth.clone(),
        prometheus: prometheus.clone(),
    });
    let http = HttpServer::new(move || {
        App::new()
            .app_data(admin.clone())
            .service(trust)
            .service(revoke)
            .service(deny)
            .service(undeny)
            .service(stats)
            .service(metrics)
    })
    .workers(1)
    .bind(flag("--http", "127.0.0.1:8080"))?;
    for address in http.addrs() {
        println!("admin API on http://{address}");
    }
    println!(
        "CURVE server on {endpoint} (domain {DOMAIN:?}), server key {}",
        server_cert.public_key
    );

    // Histograms are summaries kept over a window: the exporter needs its upkeep run.
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            prometheus.run_upkeep();
        }
    });

    http.run().await?;
    auth.stop().await;
    Ok(())
}
