//! Why a client subcommand failed: the server's refusal (its code and message, as sent),
//! an unreachable server, or a local problem with the input or the output.

use std::{error::Error as _, path::Path};

/// A failed client subcommand; `main` prints it and exits with status 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server refused the call.
    #[error("{code}: {message}")]
    Server {
        /// The gRPC status code, as `FAILED_PRECONDITION`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to `{addr}`: {reason}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why, with the causes joined by colons.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("`{path}`: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The input is malformed (a CSV line, a flag the server would not understand).
    #[error("{0}")]
    Input(String),
}

impl CliError {
    /// A failure to read or write `path`.
    pub fn file(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::File {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// A failure to connect to `addr`, with every cause of `err`.
    pub fn connect(addr: &str, err: &tonic::transport::Error) -> Self {
        let mut causes = Vec::new();
        let mut source = err.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // hyper and tonic often wrap a cause in an error with the same message.
            if causes.last() != Some(&text) {
                causes.push(text);
            }
            source = cause.source();
        }
        Self::Connect {
            addr: addr.to_owned(),
            reason: if causes.is_empty() {
                err.to_string()
            } else {
                causes.join(": ")
            },
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        // A status made on this side from a transport failure keeps its substance in its
        // causes (a TLS alert, say); a server's own status has none.
        let mut message = status.message().to_owned();
        let mut source = status.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.ends_with(&text) {
                message = format!("{message}: {text}");
            }
            source = cause.source();
        }
        Self::Server {
            code: code_name(status.code()),
            message,
        }
    }
}

/// The canonical name of a gRPC code, as `grpcurl` and the gRPC docs spell it.
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_as_the_grpc_docs_name_them() {
        assert_eq!(
            code_name(tonic::Code::FailedPrecondition),
            "FAILED_PRECONDITION"
        );
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }

    #[test]
    fn a_refusal_prints_its_code_and_the_servers_message() {
        let err = CliError::from(tonic::Status::permission_denied("`actor_user_id`: no"));
        assert_eq!(err.to_string(), "PERMISSION_DENIED: `actor_user_id`: no");
    }
}
