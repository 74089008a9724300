//! The catalog file: `Catalog::parse` over arbitrary text never panics, and every name of
//! a catalog it accepts resolves back to what it names.
#![no_main]

use accessd::model::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(catalog) = Catalog::parse(text) else {
        return;
    };
    for (id, product) in catalog.products() {
        assert_eq!(catalog.product_id(&product.name), Some(id));
    }
    for (id, ty) in catalog.resource_types() {
        assert_eq!(catalog.type_id(&ty.name), Some(id));
        let _ = catalog.parent_type(id);
    }
    for (id, permission) in catalog.permissions() {
        assert_eq!(catalog.permission_id(&permission.name), Some(id));
    }
    for (id, role) in catalog.roles() {
        assert_eq!(catalog.role_id(&role.name), Some(id));
    }
    let _ = accessd::model::catalog_text::render(&catalog);
});
