//! The catalog as text for people: what `accessd roles` prints.

use std::fmt::Write;

use super::catalog::{Catalog, Target};

/// One line per role (product, scopes, permissions), then the products and permissions.
pub fn render(catalog: &Catalog) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<12} {:<20} PERMISSIONS",
        "ROLE", "PRODUCT", "SCOPES"
    );
    for (_, role) in catalog.roles() {
        let mut scopes = Vec::new();
        if let Some(ty) = role.scope_type {
            scopes.push(format!("one {}", catalog.type_name(ty)));
        }
        if role.accepts_all {
            scopes.push("all".to_owned());
        }
        let permissions: Vec<&str> = catalog
            .permissions()
            .filter(|(id, _)| role.allows(*id))
            .map(|(_, p)| p.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "{:<18} {:<12} {:<20} {}",
            role.name,
            catalog.product_name(role.product),
            scopes.join(", "),
            permissions.join(" ")
        );
    }
    let _ = writeln!(out, "\nPRODUCTS");
    for (_, product) in catalog.products() {
        let note = if product.always_enabled {
            " (always enabled)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {}{note}", product.name);
    }
    let _ = writeln!(out, "\nPERMISSIONS (what a check names; owners hold all)");
    for (_, permission) in catalog.permissions() {
        let names = match permission.target {
            Target::Workspace => "workspace",
            Target::Instance(ty) => catalog.type_name(ty),
        };
        let note = if permission.every_member {
            ", every member"
        } else {
            ""
        };
        let _ = writeln!(out, "  {:<26} {names}{note}", permission.name);
    }
    out
}
