//! Traces as an operator sees them: a caller's `traceparent` puts its trace id in the
//! log lines of its call, and with `--otlp-endpoint` the call's span reaches a real OTLP
//! receiver as a child of the caller's span, exported by the time the server has stopped.

use std::{path::Path, sync::Arc};

use accessd::{
    api::callers::{digest_hex, token_digest},
    proto,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use tokio::{net::TcpListener, sync::Mutex};
use tonic::{
    Code,
    transport::{Server, server::TcpIncoming},
};

use crate::{harness::check_req, replication::process::Node};

const CONSOLE_TOKEN: &str = "tok-console-7d1e5b8c40";
const WRONG_TOKEN: &str = "tok-0000wrong0000";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// A `traceparent` of trace `trace_id` from the caller's span `span_id`, sampled.
fn traceparent(trace_id: &str, span_id: &str) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

/// `message` with the bearer `token`, and with `traceparent` if given.
fn call<T>(token: &str, traceparent: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = crate::harness::with_token(token, message);
    if let Some(traceparent) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", traceparent.parse().unwrap());
    }
    request
}

fn create(workspace_id: &str) -> proto::CreateWorkspaceRequest {
    proto::CreateWorkspaceRequest {
        workspace_id: workspace_id.into(),
        owner_user_id: "olivia".into(),
        products: vec![],
    }
}

/// A callers file naming one caller, `console`, with every scope.
fn callers_file(dir: &Path) -> String {
    let path = dir.join("callers.toml");
    std::fs::write(
        &path,
        format!(
            "[[caller]]\nname = \"console\"\ntoken_sha256 = \"{}\"\n\
             scopes = [\"check\", \"admin\"]\n",
            digest_hex(&token_digest(CONSOLE_TOKEN))
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// The JSON log lines whose message is `message`.
fn lines_saying(node: &Node, message: &str) -> Vec<serde_json::Value> {
    node.logs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["fields"]["message"] == message)
        .collect()
}

/// The trace id a log line shows, from the span of its call.
fn trace_id_of(event: &serde_json::Value) -> Option<&str> {
    event["span"]["trace_id"].as_str()
}

#[tokio::test]
async fn a_caller_s_trace_id_is_in_the_log_lines_of_its_call_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let callers = callers_file(dir.path());
    // At info, with the writes' own debug line: checks' spans stay at debug unless the
    // caller sent a traceparent.
    let node = Node::starting_logging(
        &dir.path().join("data"),
        "info,accessd::api::admin=debug",
        &["--callers", &callers],
    )
    .await;
    node.wait_health("", true, std::time::Duration::from_secs(60))
        .await;
    let traced = traceparent(TRACE_ID, CALLER_SPAN_ID);
    node.admin()
        .create_workspace(call(CONSOLE_TOKEN, Some(&traced), create("traced")))
        .await
        .unwrap();
    node.admin()
        .create_workspace(call(CONSOLE_TOKEN, None, create("untraced")))
        .await
        .unwrap();
    let check_trace = "0af7651916cd43dd8448eb211c80319c";
    let refused = node
        .access()
        .check(call(
            WRONG_TOKEN,
            Some(&traceparent(check_trace, "b7ad6b7169203331")),
            check_req("traced", "olivia", "workspace.read", None),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = node
        .access()
        .check(call(
            WRONG_TOKEN,
            None,
            check_req("traced", "olivia", "workspace.read", None),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let writes = lines_saying(&node, "write");
    assert_eq!(writes.len(), 2, "{writes:#?}");
    let traced_write = writes
        .iter()
        .find(|event| event["span"]["method"] == "/accessd.v1.AdminService/CreateWorkspace")
        .unwrap();
    assert_eq!(trace_id_of(traced_write), Some(TRACE_ID), "{traced_write}");
    assert_eq!(trace_id_of(&writes[1]), None, "{}", writes[1]);
    // Every span of the line is the call's own, so no outer span names the trace.
    assert!(!writes[1].to_string().contains(TRACE_ID), "{}", writes[1]);

    let refusals = lines_saying(&node, "call refused");
    assert_eq!(refusals.len(), 2, "{refusals:#?}");
    assert_eq!(
        trace_id_of(&refusals[0]),
        Some(check_trace),
        "{}",
        refusals[0]
    );
    assert_eq!(
        refusals[0]["span"]["method"],
        "/accessd.v1.AccessService/Check"
    );
    // Without a traceparent a check's span is at debug, so the line has none at all.
    assert!(refusals[1].get("span").is_none(), "{}", refusals[1]);
}

/// An OTLP/gRPC receiver, as a collector is: it keeps every span exported to it.
#[derive(Default, Clone)]
struct Receiver {
    exported: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.exported.lock().await.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Serves on a port of its own; returns its URL.
    async fn serve(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(
            Server::builder()
                .add_service(TraceServiceServer::new(self.clone()))
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        format!("http://{address}")
    }

    /// Every span received, with the attributes of the resource that sent it.
    async fn spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        let exported = self.exported.lock().await;
        let mut spans = Vec::new();
        for request in exported.iter() {
            for resource_spans in &request.resource_spans {
                let resource = resource_spans
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push((resource.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|AnyValue { value }| value.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_call_s_span_is_exported_over_otlp_as_a_child_of_the_caller_s() {
    let receiver = Receiver::default();
    let endpoint = receiver.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let callers = callers_file(dir.path());
    let mut node = Node::leader(
        &dir.path().join("data"),
        &["--callers", &callers, "--otlp-endpoint", &endpoint],
    )
    .await;
    let traced = traceparent(TRACE_ID, CALLER_SPAN_ID);
    node.admin()
        .create_workspace(call(CONSOLE_TOKEN, Some(&traced), create("acme")))
        .await
        .unwrap();
    let again = node
        .admin()
        .create_workspace(call(CONSOLE_TOKEN, Some(&traced), create("acme")))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let check_span = "b7ad6b7169203331";
    let decision = node
        .access()
        .check(call(
            CONSOLE_TOKEN,
            Some(&traceparent(TRACE_ID, check_span)),
            check_req("acme", "olivia", "workspace.read", None),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(decision.decision.unwrap().allowed);
    // The drain ends every call, and the exporter's last batch goes out before exit.
    node.terminate().await;

    let spans = receiver.spans().await;
    let of_trace: Vec<_> = spans
        .iter()
        .filter(|(_, span)| hex(&span.trace_id) == TRACE_ID)
        .collect();
    let named = |name: &str| -> Vec<&(Vec<KeyValue>, Span)> {
        of_trace
            .iter()
            .copied()
            .filter(|(_, span)| span.name == name)
            .collect()
    };
    let creates = named("accessd.v1.AdminService/CreateWorkspace");
    assert_eq!(creates.len(), 2, "{spans:#?}");
    for (resource, span) in &creates {
        assert_eq!(hex(&span.parent_span_id), CALLER_SPAN_ID);
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(
            attribute(resource, "service.name"),
            Some(&Value::StringValue("accessd".into()))
        );
        assert_eq!(
            attribute(resource, "service.version"),
            Some(&Value::StringValue(env!("CARGO_PKG_VERSION").into()))
        );
        assert_eq!(
            attribute(&span.attributes, "rpc.service"),
            Some(&Value::StringValue("accessd.v1.AdminService".into()))
        );
        assert_eq!(
            attribute(&span.attributes, "rpc.method"),
            Some(&Value::StringValue("CreateWorkspace".into()))
        );
    }
    let mut codes: Vec<_> = creates
        .iter()
        .map(|(_, span)| attribute(&span.attributes, "rpc.grpc.status_code").cloned())
        .collect();
    codes.sort_by_key(|code| format!("{code:?}"));
    assert_eq!(
        codes,
        [
            Some(Value::IntValue(0)),
            Some(Value::IntValue(Code::AlreadyExists as i64))
        ]
    );
    let checks = named("accessd.v1.AccessService/Check");
    assert_eq!(checks.len(), 1, "{spans:#?}");
    assert_eq!(hex(&checks[0].1.parent_span_id), check_span);
    assert_eq!(
        attribute(&checks[0].1.attributes, "rpc.grpc.status_code"),
        Some(&Value::IntValue(0))
    );
}
