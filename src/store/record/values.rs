//! The values stored under each kind of key, each encoder beside its decoder. Decoders
//! borrow from the stored bytes and return names, not catalog indexes: what a name
//! means is for the loader to resolve against the catalog in force.

use super::super::StoreError;
use crate::model::{Catalog, Grant, InstanceKey, Membership, ProductSet, Scope, access::Member};

const SEP: u8 = 0;

/// The stored form of a counter (the revision, the format version): 8 bytes big-endian.
pub fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// A counter from its stored form; `what` names it in the error.
pub fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 8 bytes")))
}

/// The stored form of a workspace record: its enabled products' names, comma-separated.
pub fn encode_products(catalog: &Catalog, products: ProductSet) -> Vec<u8> {
    products
        .iter()
        .map(|p| catalog.product_name(p))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

/// The product names of a workspace record.
pub fn decode_products(value: &[u8]) -> Result<impl Iterator<Item = &str>, StoreError> {
    Ok(text(value)?.split(',').filter(|name| !name.is_empty()))
}

/// The stored form of a membership.
fn encode_membership(membership: Membership) -> &'static [u8] {
    match membership {
        Membership::Owner => b"owner",
        Membership::Member => b"member",
    }
}

/// Appends a member record: the membership, then each grant on a line of its own, then
/// the `retained` lines (grants the catalog in force cannot represent, kept verbatim).
pub fn encode_member(
    value: &mut Vec<u8>,
    catalog: &Catalog,
    member: &Member,
    retained: &[Vec<u8>],
) {
    value.extend_from_slice(encode_membership(member.membership));
    for grant in &member.grants {
        value.push(b'\n');
        encode_grant(value, catalog, grant);
    }
    for line in retained {
        value.push(b'\n');
        value.extend_from_slice(line);
    }
}

/// A member record as stored: the membership, and its grant lines still to decode
/// (with [`decode_grant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRecord<'a> {
    /// Owner or member.
    pub membership: Membership,
    /// The lines after the membership, one grant each.
    grant_lines: Option<&'a [u8]>,
}

impl<'a> MemberRecord<'a> {
    /// The record's grant lines, in order.
    pub fn grant_lines(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.grant_lines
            .into_iter()
            .flat_map(|lines| lines.split(|b| *b == b'\n'))
    }

    /// How many grant lines the record holds.
    pub fn grant_count(&self) -> usize {
        self.grant_lines
            .map_or(0, |lines| lines.iter().filter(|b| **b == b'\n').count() + 1)
    }
}

/// A member record from its stored form.
pub fn decode_member(record: &[u8]) -> Result<MemberRecord<'_>, StoreError> {
    let (membership, grant_lines) = match record.iter().position(|b| *b == b'\n') {
        Some(at) => (record.get(..at), record.get(at + 1..)),
        None => (Some(record), None),
    };
    let membership = match membership {
        Some(b"owner") => Membership::Owner,
        Some(b"member") => Membership::Member,
        _ => return Err(StoreError::Corrupt("bad membership record".into())),
    };
    Ok(MemberRecord {
        membership,
        grant_lines,
    })
}

/// Appends one grant as a line of a member record (without its leading newline):
/// `{role} 0 a` for all instances, `{role} 0 i{type} 0 {id}` for one.
fn encode_grant(value: &mut Vec<u8>, catalog: &Catalog, grant: &Grant) {
    value.extend_from_slice(catalog.role_name(grant.role).as_bytes());
    value.push(SEP);
    match &grant.scope {
        Scope::All => value.push(b'a'),
        Scope::Instance(ty, id) => {
            value.push(b'i');
            value.extend_from_slice(catalog.type_name(*ty).as_bytes());
            value.push(SEP);
            value.extend_from_slice(id.as_str().as_bytes());
        }
    }
}

/// A grant line of a member record, by the names it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRecord<'a> {
    /// The role's name.
    pub role: &'a str,
    /// What it covers.
    pub scope: ScopeRecord<'a>,
}

/// The scope of a stored grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRecord<'a> {
    /// Every instance.
    All,
    /// One instance, by type name and id.
    Instance {
        /// The instance's type's name.
        type_name: &'a str,
        /// The instance's id.
        id: &'a str,
    },
}

/// A grant line of a member record.
pub fn decode_grant(line: &[u8]) -> Result<GrantRecord<'_>, StoreError> {
    let bad = || StoreError::Corrupt("bad grant in a member record".into());
    let mut fields = line.splitn(3, |b| *b == SEP);
    let role = text(fields.next().ok_or_else(bad)?)?;
    let scope = match (fields.next(), fields.next()) {
        (Some(b"a"), None) => ScopeRecord::All,
        (Some(tagged_type), Some(id)) => match tagged_type.split_first() {
            Some((b'i', type_name)) if !id.contains(&SEP) => ScopeRecord::Instance {
                type_name: text(type_name)?,
                id: text(id)?,
            },
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    Ok(GrantRecord { role, scope })
}

/// Appends an instance record: its parent's type name and id, if it has one.
pub fn encode_instance(value: &mut Vec<u8>, catalog: &Catalog, parent: Option<&InstanceKey>) {
    if let Some((ty, id)) = parent {
        value.extend_from_slice(catalog.type_name(*ty).as_bytes());
        value.push(SEP);
        value.extend_from_slice(id.as_str().as_bytes());
    }
}

/// An instance record's parent, by type name and id, if it has one.
pub fn decode_instance(record: &[u8]) -> Result<Option<(&str, &str)>, StoreError> {
    if record.is_empty() {
        return Ok(None);
    }
    let mut fields = record.splitn(2, |b| *b == SEP);
    match (fields.next(), fields.next()) {
        (Some(type_name), Some(id)) if !id.contains(&SEP) => {
            Ok(Some((text(type_name)?, text(id)?)))
        }
        _ => Err(StoreError::Corrupt("bad instance record".into())),
    }
}

/// A stored name or id as text.
pub fn text(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(|_| StoreError::Corrupt("non-UTF-8 name or id".into()))
}
