//! A real accessd server for tests: bound on `127.0.0.1:0`, its data in a temporary
//! directory, stopped (drained and flushed) by `stop` or on drop.

use std::{net::SocketAddr, path::Path, sync::Arc};

use accessd::{
    model::Catalog,
    proto::{
        self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    },
    server::{ServeOptions, serve},
    store::{Store, StoreConfig},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: Arc<tempfile::TempDir>,
    pub channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    store: Arc<Store>,
}

impl TestServer {
    /// A server on a fresh data directory with the built-in catalog.
    pub async fn start() -> Self {
        Self::start_with(
            Arc::new(tempfile::tempdir().unwrap()),
            Catalog::built_in(),
            ServeOptions::default(),
        )
        .await
    }

    /// A server on `data_dir` (kept across restarts) with `catalog` and `options`.
    pub async fn start_with(
        data_dir: Arc<tempfile::TempDir>,
        catalog: Catalog,
        options: ServeOptions,
    ) -> Self {
        init_logs();
        let store = open_store(data_dir.path(), catalog);
        Self::serve_store(data_dir, store, options).await
    }

    /// A server on a fresh data directory with the built-in catalog and the store
    /// settings `config`.
    pub async fn start_with_store(config: &StoreConfig) -> Self {
        init_logs();
        let data_dir = Arc::new(tempfile::tempdir().unwrap());
        let store = Store::open(data_dir.path(), Arc::new(Catalog::built_in()), config).unwrap();
        Self::serve_store(data_dir, store, ServeOptions::default()).await
    }

    /// Serves `store`, opened on `data_dir`, with `options`.
    async fn serve_store(
        data_dir: Arc<tempfile::TempDir>,
        store: Store,
        options: ServeOptions,
    ) -> Self {
        let store = Arc::new(store);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let tls = options.tls.is_some();
        let task = tokio::spawn(serve(listener, Arc::clone(&store), options, async move {
            let _ = signal.await;
        }));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        // The listener is already bound, so connecting needs no wait. A server with TLS
        // gets no plaintext connection: its tests make their own.
        let endpoint = Channel::from_shared(format!("http://{addr}")).unwrap();
        let channel = if tls {
            endpoint.connect_lazy()
        } else {
            endpoint.connect().await.unwrap()
        };
        Self {
            addr,
            data_dir,
            channel,
            shutdown: Some(shutdown),
            task: Some(task),
            store,
        }
    }

    pub fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// Drains, stops and closes the store; returns the data directory for a restart.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.shutdown_now().await;
        Arc::clone(&self.data_dir)
    }

    /// Stops and starts again on the same data directory.
    pub async fn restart(self) -> Self {
        let dir = self.stop().await;
        Self::start_with(dir, Catalog::built_in(), ServeOptions::default()).await
    }

    async fn shutdown_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn open_store(dir: &Path, catalog: Catalog) -> Store {
    Store::open(dir, Arc::new(catalog), &StoreConfig::default()).unwrap()
}

/// Logs only when `TEST_LOG=1`.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_test_writer()
            .try_init();
    }
}

/// A resource reference.
pub fn res(ty: &str, id: &str) -> Option<proto::ResourceRef> {
    Some(proto::ResourceRef {
        r#type: ty.into(),
        id: id.into(),
    })
}

/// The all-instances scope.
pub fn all() -> Option<proto::Scope> {
    Some(proto::Scope {
        kind: Some(proto::scope::Kind::All(proto::AllInstances {})),
    })
}

/// The scope of one instance.
pub fn one(ty: &str, id: &str) -> Option<proto::Scope> {
    Some(proto::Scope {
        kind: Some(proto::scope::Kind::Instance(proto::ResourceRef {
            r#type: ty.into(),
            id: id.into(),
        })),
    })
}

/// A check request.
pub fn check_req(
    ws: &str,
    user: &str,
    permission: &str,
    resource: Option<proto::ResourceRef>,
) -> proto::CheckRequest {
    proto::CheckRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        permission: permission.into(),
        resource,
        at_least_revision: 0,
    }
}

/// Creates a workspace owned by `owner` with `products`.
pub async fn create_workspace(
    server: &TestServer,
    ws: &str,
    owner: &str,
    products: &[&str],
) -> u64 {
    server
        .admin()
        .create_workspace(proto::CreateWorkspaceRequest {
            workspace_id: ws.into(),
            owner_user_id: owner.into(),
            products: products.iter().map(|p| p.to_string()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision
}

/// Adds `user` as a member of `ws`.
pub async fn add_member(server: &TestServer, ws: &str, user: &str) {
    server
        .admin()
        .set_membership(proto::SetMembershipRequest {
            workspace_id: ws.into(),
            user_id: user.into(),
            membership: proto::Membership::Member.into(),
            actor_user_id: String::new(),
        })
        .await
        .unwrap();
}

/// Registers a resource instance (`parent` for destinations).
pub async fn register(server: &TestServer, ws: &str, ty: &str, id: &str, parent: &str) {
    server
        .admin()
        .register_resource(proto::RegisterResourceRequest {
            workspace_id: ws.into(),
            resource: res(ty, id),
            parent_id: parent.into(),
        })
        .await
        .unwrap();
}

/// Grants `role` to `user` with `scope`.
pub async fn grant(
    server: &TestServer,
    ws: &str,
    user: &str,
    role: &str,
    scope: Option<proto::Scope>,
) -> proto::WriteResponse {
    server
        .admin()
        .grant(proto::GrantRequest {
            workspace_id: ws.into(),
            user_id: user.into(),
            role: role.into(),
            scope,
            actor_user_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Whether `user` may `permission` on `resource`.
pub async fn allowed(
    server: &TestServer,
    ws: &str,
    user: &str,
    permission: &str,
    resource: Option<proto::ResourceRef>,
) -> bool {
    server
        .access()
        .check(check_req(ws, user, permission, resource))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap()
        .allowed
}

impl TestServer {
    /// A server on a fresh data directory with the built-in catalog and `options`.
    pub async fn start_with_options(options: ServeOptions) -> Self {
        Self::start_with(
            Arc::new(tempfile::tempdir().unwrap()),
            Catalog::built_in(),
            options,
        )
        .await
    }

    /// A connection of its own, as a separate client process would open.
    pub async fn connect(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Signals the server to stop and returns at once; `stop` then waits for the drain.
    pub fn request_stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// The server's current revision, read through a check (revisions are global).
    pub async fn revision(&self) -> u64 {
        self.access()
            .check(check_req("-", "-", "workspace.read", None))
            .await
            .unwrap()
            .into_inner()
            .revision
    }
}

/// Asserts that `result` failed with `code` and a message naming `field` in backticks.
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    field: &str,
) -> tonic::Status {
    let status = result.expect_err("the call should have failed");
    assert_eq!(
        status.code(),
        code,
        "wrong code; message: {}",
        status.message()
    );
    let named = format!("`{field}`");
    assert!(
        status.message().contains(&named),
        "message {:?} does not name {named}",
        status.message()
    );
    status
}

/// A grant request with no actor.
pub fn grant_req(
    ws: &str,
    user: &str,
    role: &str,
    scope: Option<proto::Scope>,
) -> proto::GrantRequest {
    proto::GrantRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        role: role.into(),
        scope,
        actor_user_id: String::new(),
    }
}

/// A revoke request with no actor.
pub fn revoke_req(
    ws: &str,
    user: &str,
    role: &str,
    scope: Option<proto::Scope>,
) -> proto::RevokeRequest {
    proto::RevokeRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        role: role.into(),
        scope,
        actor_user_id: String::new(),
    }
}

/// A membership request with no actor.
pub fn membership_req(
    ws: &str,
    user: &str,
    membership: proto::Membership,
) -> proto::SetMembershipRequest {
    proto::SetMembershipRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        membership: membership.into(),
        actor_user_id: String::new(),
    }
}

/// Revokes `role` with `scope` from `user`.
pub async fn revoke(
    server: &TestServer,
    ws: &str,
    user: &str,
    role: &str,
    scope: Option<proto::Scope>,
) -> proto::WriteResponse {
    server
        .admin()
        .revoke(revoke_req(ws, user, role, scope))
        .await
        .unwrap()
        .into_inner()
}

/// Gives `user` the `membership` of `ws`.
pub async fn set_membership(
    server: &TestServer,
    ws: &str,
    user: &str,
    membership: proto::Membership,
) -> proto::WriteResponse {
    server
        .admin()
        .set_membership(membership_req(ws, user, membership))
        .await
        .unwrap()
        .into_inner()
}

/// Removes `user` from `ws`.
pub async fn remove_member(server: &TestServer, ws: &str, user: &str) -> proto::WriteResponse {
    server
        .admin()
        .remove_member(proto::RemoveMemberRequest {
            workspace_id: ws.into(),
            user_id: user.into(),
            actor_user_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Deletes a resource instance.
pub async fn delete_resource(
    server: &TestServer,
    ws: &str,
    ty: &str,
    id: &str,
) -> proto::WriteResponse {
    server
        .admin()
        .delete_resource(proto::DeleteResourceRequest {
            workspace_id: ws.into(),
            resource: res(ty, id),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Deletes a workspace.
pub async fn delete_workspace(server: &TestServer, ws: &str) -> proto::WriteResponse {
    server
        .admin()
        .delete_workspace(proto::DeleteWorkspaceRequest {
            workspace_id: ws.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Replaces the add-on products of `ws`.
pub async fn set_products(
    server: &TestServer,
    ws: &str,
    products: &[&str],
) -> proto::WriteResponse {
    server
        .admin()
        .set_products(proto::SetProductsRequest {
            workspace_id: ws.into(),
            products: products.iter().map(|p| p.to_string()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The decision of one check.
pub async fn decide(
    server: &TestServer,
    ws: &str,
    user: &str,
    permission: &str,
    resource: Option<proto::ResourceRef>,
) -> proto::Decision {
    server
        .access()
        .check(check_req(ws, user, permission, resource))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap()
}

/// The denial reason of a decision, or `None` if it allowed.
pub fn denial(decision: &proto::Decision) -> Option<proto::DenialReason> {
    match decision.basis {
        Some(proto::decision::Basis::Denial(reason)) => {
            Some(proto::DenialReason::try_from(reason).unwrap())
        }
        _ => None,
    }
}

/// A ListAccess request for `ws` with no filter.
pub fn list_req(ws: &str) -> proto::ListAccessRequest {
    proto::ListAccessRequest {
        workspace_id: ws.into(),
        ..Default::default()
    }
}

/// Every entry `request` selects, walking all its pages.
pub async fn list_all(
    server: &TestServer,
    mut request: proto::ListAccessRequest,
) -> Vec<proto::AccessEntry> {
    let mut entries = Vec::new();
    loop {
        let page = server
            .access()
            .list_access(request.clone())
            .await
            .unwrap()
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return entries;
        }
        request.page_token = page.next_page_token;
    }
}

/// A grant as text: `role@all` or `role@type/id`.
pub fn grant_text(grant: &proto::Grant) -> String {
    let scope = match grant.scope.as_ref().and_then(|s| s.kind.as_ref()) {
        Some(proto::scope::Kind::All(_)) => "all".to_owned(),
        Some(proto::scope::Kind::Instance(r)) => format!("{}/{}", r.r#type, r.id),
        None => "none".to_owned(),
    };
    format!("{}@{scope}", grant.role)
}

/// The team table as text rows: `user owner|member [grant, ...]`.
pub fn table(entries: &[proto::AccessEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| {
            let membership = match entry.membership() {
                proto::Membership::Owner => "owner",
                proto::Membership::Member => "member",
                proto::Membership::Unspecified => "unspecified",
            };
            let grants: Vec<String> = entry.grants.iter().map(grant_text).collect();
            format!("{} {membership} [{}]", entry.user_id, grants.join(", "))
        })
        .collect()
}

/// The whole team table of `ws` (up to 1,000 users) as text rows, and its revision.
pub async fn team(server: &TestServer, ws: &str) -> (u64, Vec<String>) {
    let page = server
        .access()
        .list_access(proto::ListAccessRequest {
            page_size: 1000,
            ..list_req(ws)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.next_page_token.is_empty(), "more than one page");
    (page.revision, table(&page.entries))
}

/// `message` as a request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Follows an import's progress to its end: its last message, holding every rejection
/// reported along the way.
pub async fn import_to_end(
    answer: Result<tonic::Response<tonic::Streaming<proto::ImportProgress>>, tonic::Status>,
) -> Result<proto::ImportProgress, tonic::Status> {
    let mut progress = answer?.into_inner();
    let mut rejected = Vec::new();
    while let Some(mut message) = progress.message().await? {
        rejected.append(&mut message.rejected);
        if message.done {
            message.rejected = rejected;
            return Ok(message);
        }
    }
    Err(tonic::Status::unknown("the import ended before `done`"))
}

/// `records` as import messages of `chunk` records each, numbered from 0.
pub fn import_chunks(records: &[proto::Record], chunk: usize) -> Vec<proto::ImportRequest> {
    records
        .chunks(chunk)
        .map(|c| proto::ImportRequest {
            records: c.to_vec(),
            first_index: 0,
        })
        .collect()
}
