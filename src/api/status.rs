//! Engine and store errors as gRPC statuses, each with the code a caller can act on.

use tonic::Status;

use crate::{
    engine::WriteError,
    store::{Cause, StoreError},
};

/// The status of a refused write, naming the request field it is about.
pub fn refused(err: &WriteError) -> Status {
    refused_naming(err, "resource")
}

/// The status of a refused write whose unregistered instance, if any, is the request
/// field `instance_field` (the `parent_id` of a registration, the `scope.instance` of a grant).
pub fn refused_naming(err: &WriteError, instance_field: &str) -> Status {
    let message = |field: &str| format!("`{field}`: {err}");
    match err {
        WriteError::WorkspaceNotFound(_) => Status::not_found(message("workspace_id")),
        WriteError::ResourceNotFound { .. } => Status::not_found(message(instance_field)),
        WriteError::WorkspaceExists(_) => Status::already_exists(message("workspace_id")),
        WriteError::ResourceExists { .. } => Status::already_exists(message("resource")),
        WriteError::ActorNotAllowed(_) => Status::permission_denied(message("actor_user_id")),
        WriteError::NotAMember(_) | WriteError::LastOwner(_) => {
            Status::failed_precondition(message("user_id"))
        }
        WriteError::NoOwner(_) => Status::invalid_argument(message("owner_user_ids")),
        // Only an import's workspace record can leave its products out.
        WriteError::ProductsUnlisted { .. } => {
            Status::failed_precondition(message("workspace.products"))
        }
        WriteError::ProductNotEnabled { .. } => Status::failed_precondition(message("role")),
        WriteError::ScopeNotAccepted { .. } => Status::invalid_argument(message("scope")),
        WriteError::BadParent(_) => Status::invalid_argument(message("parent_id")),
    }
}

/// The status of a store failure.
pub fn store(err: &StoreError) -> Status {
    match err {
        StoreError::Closed => Status::unavailable(err.to_string()),
        StoreError::Refused(refusal) => match refusal.cause {
            Cause::NoSpace => Status::resource_exhausted(err.to_string()),
            Cause::Io => Status::unavailable(err.to_string()),
        },
        StoreError::Replication(_) => Status::aborted(err.to_string()),
        StoreError::Database(_)
        | StoreError::ChangeLog(_)
        | StoreError::Blobs(_)
        | StoreError::Corrupt(_)
        | StoreError::Damaged(_)
        | StoreError::Unsupported(_)
        | StoreError::Spawn(..) => Status::internal(err.to_string()),
    }
}

/// A field that failed validation.
pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("`{field}`: {problem}"))
}
