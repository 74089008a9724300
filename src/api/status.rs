//! Engine and store errors as gRPC statuses, each with the code a caller can act on.

use tonic::Status;

use crate::{engine::WriteError, store::StoreError};

/// The status of a refused write.
pub fn refused(err: &WriteError) -> Status {
    let message = err.to_string();
    match err {
        WriteError::WorkspaceNotFound(_) => Status::not_found(message),
        WriteError::ResourceNotFound { .. } => Status::not_found(message),
        WriteError::WorkspaceExists(_) | WriteError::ResourceExists { .. } => {
            Status::already_exists(message)
        }
        WriteError::ActorNotAllowed(_) => {
            Status::permission_denied(format!("`actor_user_id`: {message}"))
        }
        WriteError::NotAMember(_) => Status::failed_precondition(format!("`user_id`: {message}")),
        WriteError::NoOwner(_) => Status::invalid_argument(format!("`owner_user_ids`: {message}")),
        WriteError::LastOwner(_) | WriteError::ProductNotEnabled { .. } => {
            Status::failed_precondition(message)
        }
        WriteError::ScopeNotAccepted { .. } => {
            Status::invalid_argument(format!("`scope`: {message}"))
        }
        WriteError::BadParent(_) => Status::invalid_argument(format!("`parent_id`: {message}")),
    }
}

/// The status of a store failure.
pub fn store(err: &StoreError) -> Status {
    match err {
        StoreError::Closed => Status::unavailable(err.to_string()),
        StoreError::Database(_) | StoreError::Corrupt(_) => Status::internal(err.to_string()),
    }
}

/// A field that failed validation.
pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("`{field}`: {problem}"))
}
