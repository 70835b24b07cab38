//! What is checked of a migrator before any of its migrations runs or is
//! compared with a ledger.

use std::collections::HashMap;

use sea_orm_migration::MigratorTrait;

use crate::Error;

/// `M`'s migration names in order, or [`Error::DuplicateMigrationName`] when
/// two share a name: the ledger records names only, so the second would
/// count as applied with the first (skipped on existing tenants) or collide
/// with it in the ledger (new tenants).
pub(crate) fn migration_names<M: MigratorTrait>() -> Result<Vec<String>, Error> {
    let names: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(&first) = first_at.get(name.as_str()) {
            return Err(Error::DuplicateMigrationName {
                migrator: std::any::type_name::<M>().to_owned(),
                name: name.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
        first_at.insert(name, i);
    }
    Ok(names)
}
