//! A workspace's instance tables by type, in a slot per type.

use super::{access::Instance, catalog::TypeId, id_table::IdTable, ids::ResourceId};

/// A workspace's instances by type: a slot per type of the catalog up to the greatest
/// with instances, so that a check reaches a type's table at a computed place rather
/// than by a search among the types (at ten million grants, a cache miss or two less).
/// A type without instances has an empty table, and the last slot is never empty, so
/// that equal states are equal slot for slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByType(Box<[IdTable<ResourceId, Instance>]>);

impl ByType {
    /// Tables of `tables`, in any order of types, each type once.
    pub fn from_tables(tables: Vec<(TypeId, IdTable<ResourceId, Instance>)>) -> Self {
        let len = tables
            .iter()
            .map(|(ty, _)| ty.index() + 1)
            .max()
            .unwrap_or(0);
        let mut slots: Vec<IdTable<ResourceId, Instance>> = Vec::new();
        slots.resize_with(len, IdTable::default);
        for (ty, table) in tables {
            if let Some(slot) = slots.get_mut(ty.index()) {
                *slot = table;
            }
        }
        let mut by_type = Self(slots.into_boxed_slice());
        by_type.trim();
        by_type
    }

    /// The instances of type `ty`, if it has any.
    pub fn get(&self, ty: TypeId) -> Option<&IdTable<ResourceId, Instance>> {
        self.0.get(ty.index()).filter(|table| !table.is_empty())
    }

    /// Changes the instances of type `ty` with `change`, keeping no empty last slot.
    pub fn change<R>(
        &mut self,
        ty: TypeId,
        change: impl FnOnce(&mut IdTable<ResourceId, Instance>) -> R,
    ) -> R {
        if self.0.len() <= ty.index() {
            let mut slots = std::mem::take(&mut self.0).into_vec();
            slots.resize_with(ty.index() + 1, IdTable::default);
            self.0 = slots.into_boxed_slice();
        }
        // The slot exists now; the scratch table only keeps this free of a panic path.
        let mut scratch = IdTable::default();
        let changed = change(self.0.get_mut(ty.index()).unwrap_or(&mut scratch));
        self.trim();
        changed
    }

    /// Removes instance `id` of type `ty`, returning it.
    pub fn remove(&mut self, ty: TypeId, id: &ResourceId) -> Option<Instance> {
        self.get(ty)?;
        self.change(ty, |of_type| of_type.remove(id))
    }

    fn trim(&mut self) {
        let len = self
            .0
            .iter()
            .rposition(|t| !t.is_empty())
            .map_or(0, |at| at + 1);
        if len < self.0.len() {
            let mut slots = std::mem::take(&mut self.0).into_vec();
            slots.truncate(len);
            self.0 = slots.into_boxed_slice();
        }
    }

    /// The types with instances, in order, with their instances.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &IdTable<ResourceId, Instance>)> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, table)| !table.is_empty())
            .filter_map(|(at, table)| Some((TypeId::at(at)?, table)))
    }
}
