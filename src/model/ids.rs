//! Identifiers of workspaces, users and resource instances, validated once at the edge.
//! An id that exists has passed `parse`: 1 to 128 printable ASCII characters.

use std::{borrow::Borrow, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
// Without a weak count: 8 bytes less for each of the millions of ids held.
use triomphe::Arc;

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is empty.
    #[error("must not be empty")]
    Empty,
    /// The string is longer than [`MAX_ID_LEN`] bytes.
    #[error("must be at most {MAX_ID_LEN} bytes, got {0}")]
    TooLong(usize),
    /// The string holds a space, a control character or a non-ASCII character.
    #[error("must be printable ASCII without spaces, found {0:?} at byte {1}")]
    BadCharacter(char, usize),
}

/// Checks `raw` as every id type's `parse` does, without making an id: for the check
/// path, which looks ids up borrowed from the request.
pub fn validate(raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(raw.len()));
    }
    // Printable ASCII keeps ids safe as storage key parts (no NUL separator inside),
    // in logs, in CSV and in page tokens.
    // Bytes, not chars: every check parses three ids. A non-ASCII byte fails the test
    // too, and only then is the character decoded for the message. The first pass has
    // no early exit, so that the compiler tests many bytes per instruction.
    if raw.bytes().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
        return Ok(());
    }
    match raw.bytes().position(|b| !b.is_ascii_graphic()) {
        Some(at) => {
            let c = raw
                .get(at..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or('?');
            Err(IdError::BadCharacter(c, at))
        }
        None => Ok(()),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `raw` as an id.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                validate(raw)?;
                Ok(Self(Arc::from(raw)))
            }

            /// The id as a string.
            #[inline]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", &*self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A workspace's id.
    WorkspaceId
);
id_type!(
    /// An already-authenticated user's id.
    UserId
);
id_type!(
    /// A resource instance's id, unique within its workspace and type.
    ResourceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_printable_ascii() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("auth0|5f1c").is_ok());
        assert!(ResourceId::parse(&"x".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn ids_reject_empty_long_and_unprintable() {
        assert_eq!(UserId::parse(""), Err(IdError::Empty));
        assert_eq!(
            UserId::parse(&"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong(MAX_ID_LEN + 1))
        );
        assert_eq!(UserId::parse("a b"), Err(IdError::BadCharacter(' ', 1)));
        assert_eq!(UserId::parse("a\0"), Err(IdError::BadCharacter('\0', 1)));
        assert_eq!(UserId::parse("é"), Err(IdError::BadCharacter('é', 0)));
    }
}
