//! Import records as the RPC receives them: `transfer::command` over an arbitrary
//! `proto::Record` never panics.
#![no_main]

use accessd::{fuzzing::transfer, proto};
use accessd_fuzz::{CATALOG, NAMES, Name};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    Empty,
    Workspace {
        workspace_id: String,
        products: Vec<Name>,
        owner_user_ids: Vec<String>,
    },
    Member {
        workspace_id: String,
        user_id: String,
        membership: i32,
    },
    Resource {
        workspace_id: String,
        resource: Option<(Name, String)>,
        parent_id: String,
    },
    Grant {
        workspace_id: String,
        user_id: String,
        role: Name,
        scope: Option<Option<Option<(Name, String)>>>,
    },
}

fn resource((ty, id): (Name, String)) -> proto::ResourceRef {
    proto::ResourceRef {
        r#type: ty.pick(&NAMES.types),
        id,
    }
}

fuzz_target!(|input: Input| {
    use proto::record::Kind;
    let kind = match input {
        Input::Empty => None,
        Input::Workspace {
            workspace_id,
            products,
            owner_user_ids,
        } => Some(Kind::Workspace(proto::WorkspaceRecord {
            workspace_id,
            products: products
                .into_iter()
                .map(|p| p.pick(&NAMES.products))
                .collect(),
            owner_user_ids,
        })),
        Input::Member {
            workspace_id,
            user_id,
            membership,
        } => Some(Kind::Member(proto::MemberRecord {
            workspace_id,
            user_id,
            membership,
        })),
        Input::Resource {
            workspace_id,
            resource: r,
            parent_id,
        } => Some(Kind::Resource(proto::ResourceRecord {
            workspace_id,
            resource: r.map(resource),
            parent_id,
        })),
        Input::Grant {
            workspace_id,
            user_id,
            role,
            scope,
        } => Some(Kind::Grant(proto::GrantRecord {
            workspace_id,
            user_id,
            role: role.pick(&NAMES.roles),
            // None: no scope; Some(None): a scope of no kind; then all, or one instance.
            scope: scope.map(|kind| proto::Scope {
                kind: kind.map(|instance| match instance {
                    None => proto::scope::Kind::All(proto::AllInstances {}),
                    Some(r) => proto::scope::Kind::Instance(resource(r)),
                }),
            }),
        })),
    };
    let _ = transfer::command(&CATALOG, &proto::Record { kind });
});
