//! The PostgreSQL side of the store tools (`fleet_bench`, `staleness`; included with
//! `#[path = "support/store.rs"] mod store_support;` next to `support`).

use actix_zap::postgres::Store;

use crate::support::fail;

/// A connection of the tool's own to `conninfo`, on a runtime of its own, with `store`'s
/// schema migrated in; the tool exits with a message when PostgreSQL cannot be reached.
pub fn connect_migrated(
    conninfo: &str,
    store: &Store,
) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let mut client = runtime
        .block_on(async {
            let (client, connection) =
                tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        })
        .unwrap_or_else(|e| fail(format!("cannot reach PostgreSQL ({e}); set FLEET_DATABASE")));
    runtime
        .block_on(store.migrate(&mut client))
        .unwrap_or_else(|e| fail(e));
    (runtime, client)
}
