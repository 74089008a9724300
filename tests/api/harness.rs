//! A real accessd server for tests: bound on `127.0.0.1:0`, its data in a temporary
//! directory, stopped (drained and flushed) by `stop` or on drop.

use std::{net::SocketAddr, path::Path, sync::Arc};

use accessd::{
    api::pb::{
        self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    },
    model::Catalog,
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
        let store = Arc::new(open_store(data_dir.path(), catalog));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&store), options, async move {
            let _ = signal.await;
        }));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        // The listener is already bound, so connecting needs no wait.
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
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
pub fn res(ty: &str, id: &str) -> Option<pb::ResourceRef> {
    Some(pb::ResourceRef {
        r#type: ty.into(),
        id: id.into(),
    })
}

/// The all-instances scope.
pub fn all() -> Option<pb::Scope> {
    Some(pb::Scope {
        kind: Some(pb::scope::Kind::All(pb::AllInstances {})),
    })
}

/// The scope of one instance.
pub fn one(ty: &str, id: &str) -> Option<pb::Scope> {
    Some(pb::Scope {
        kind: Some(pb::scope::Kind::Instance(pb::ResourceRef {
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
    resource: Option<pb::ResourceRef>,
) -> pb::CheckRequest {
    pb::CheckRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        permission: permission.into(),
        resource,
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
        .create_workspace(pb::CreateWorkspaceRequest {
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
        .set_membership(pb::SetMembershipRequest {
            workspace_id: ws.into(),
            user_id: user.into(),
            membership: pb::Membership::Member.into(),
            actor_user_id: String::new(),
        })
        .await
        .unwrap();
}

/// Registers a resource instance (`parent` for destinations).
pub async fn register(server: &TestServer, ws: &str, ty: &str, id: &str, parent: &str) {
    server
        .admin()
        .register_resource(pb::RegisterResourceRequest {
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
    scope: Option<pb::Scope>,
) -> pb::WriteResponse {
    server
        .admin()
        .grant(pb::GrantRequest {
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
    resource: Option<pb::ResourceRef>,
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
