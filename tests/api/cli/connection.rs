//! Reaching the server: the admin token from a flag or the environment, and an address
//! where nothing listens.

use std::sync::Arc;

use accessd::{model::Catalog, server::ServeOptions};

use crate::harness::*;

use super::{accessd, accessd_with};

#[tokio::test]
async fn admin_calls_send_the_token_from_the_flag_or_the_environment() {
    let options = ServeOptions {
        admin_token: Some("s3cret".into()),
        ..ServeOptions::default()
    };
    let server = TestServer::start_with(
        Arc::new(tempfile::tempdir().unwrap()),
        Catalog::built_in(),
        options,
    )
    .await;
    let create = "workspaces create --workspace acme --owner olivia --products ''";
    let refused = accessd(&server, create).await;
    assert!(refused.failed(1).starts_with("accessd: UNAUTHENTICATED: "));
    accessd(&server, format!("{create} --token s3cret"))
        .await
        .ok();
    let addr = format!("http://{}", server.addr);
    accessd_with(
        &[("ACCESSD_ADDR", &addr), ("ACCESSD_ADMIN_TOKEN", "s3cret")],
        "members add --workspace acme --user sam",
    )
    .await
    .ok();
    let read = accessd(&server, "list --workspace acme").await;
    assert!(read.ok().contains("sam"));
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_naming_the_address() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let run = accessd_with(&[], format!("list --workspace acme --addr {addr}")).await;
    assert!(
        run.failed(1)
            .starts_with(&format!("accessd: cannot connect to `http://{addr}`: ")),
        "{}",
        run.stderr
    );
}
