//! What the fuzz targets share: the built-in catalog, and names that are either one of
//! its own (so that inputs reach past the name lookups) or arbitrary text.

use std::sync::LazyLock;

use accessd::model::Catalog;
use arbitrary::Arbitrary;

/// The built-in catalog, parsed once.
pub static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::built_in);

/// A name the fuzzer picks: one of the catalog's of the right kind, or any text.
#[derive(Arbitrary, Debug)]
pub enum Name {
    /// The catalog's name at this index (modulo their number).
    Known(u8),
    /// Any text.
    Raw(String),
}

impl Name {
    /// The name, choosing among `known` for [`Name::Known`].
    pub fn pick(self, known: &[&str]) -> String {
        match self {
            Name::Known(at) if !known.is_empty() => known
                .get(usize::from(at) % known.len())
                .map_or_else(String::new, |name| (*name).to_owned()),
            Name::Known(_) => String::new(),
            Name::Raw(text) => text,
        }
    }
}

/// The catalog's names of each kind.
pub struct Names {
    /// Permission names.
    pub permissions: Vec<&'static str>,
    /// Resource type names.
    pub types: Vec<&'static str>,
    /// Role names.
    pub roles: Vec<&'static str>,
    /// Product names.
    pub products: Vec<&'static str>,
}

/// The built-in catalog's names.
pub static NAMES: LazyLock<Names> = LazyLock::new(|| {
    let catalog: &'static Catalog = &CATALOG;
    Names {
        permissions: catalog
            .permissions()
            .map(|(_, p)| p.name.as_str())
            .collect(),
        types: catalog
            .resource_types()
            .map(|(_, t)| t.name.as_str())
            .collect(),
        roles: catalog.roles().map(|(_, r)| r.name.as_str()).collect(),
        products: catalog.products().map(|(_, p)| p.name.as_str()).collect(),
    }
});
