//! Request validation: `convert::check` and the other field parsers of `api::convert`
//! over arbitrary field values never panic, and what they accept is well formed.
#![no_main]

use accessd::{
    api::convert,
    model::{ResourceId, UserId, WorkspaceId},
    proto,
};
use accessd_fuzz::{CATALOG, NAMES, Name};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    item: Option<u16>,
    workspace_id: String,
    user_id: String,
    permission: Name,
    resource: Option<(Name, String)>,
    role: Name,
    scope: Option<Option<(Name, String)>>,
    membership: i32,
    products: Vec<Name>,
    page_size: u32,
}

fuzz_target!(|input: Input| {
    let catalog = &*CATALOG;
    let names = &*NAMES;
    let request = proto::CheckRequest {
        workspace_id: input.workspace_id,
        user_id: input.user_id,
        permission: input.permission.pick(&names.permissions),
        resource: input.resource.map(|(ty, id)| proto::ResourceRef {
            r#type: ty.pick(&names.types),
            id,
        }),
        at_least_revision: 0,
    };
    if let Ok((workspace, check)) = convert::check(catalog, input.item.map(usize::from), &request) {
        // What the hot path accepts, the model's parsers accept too.
        assert!(WorkspaceId::parse(workspace).is_ok());
        assert!(UserId::parse(check.user).is_ok());
        assert_eq!(
            catalog.permission_name(check.permission),
            request.permission
        );
        if let Some(id) = check.resource {
            assert!(ResourceId::parse(id).is_ok());
        }
        // And the general parsers agree about its resource.
        convert::target(catalog, "", check.permission, request.resource.as_ref())
            .expect("check accepted a resource that target refuses");
    }
    let _ = convert::role(catalog, "role", &input.role.pick(&names.roles));
    let scope = input.scope.map(|kind| proto::Scope {
        kind: Some(match kind {
            None => proto::scope::Kind::All(proto::AllInstances {}),
            Some((ty, id)) => proto::scope::Kind::Instance(proto::ResourceRef {
                r#type: ty.pick(&names.types),
                id,
            }),
        }),
    });
    let _ = convert::scope(catalog, "scope", scope.as_ref());
    let _ = convert::membership("membership", input.membership);
    let products: Vec<String> = input
        .products
        .into_iter()
        .map(|p| p.pick(&names.products))
        .collect();
    let _ = convert::products(catalog, "products", &products);
    let _ = convert::page_size("page_size", input.page_size);
    let _ = convert::optional_user_id("user_id", &request.user_id);
});
