//! The ledger of what every transaction's caller was told, and the final
//! comparison of the database with it.

use std::collections::HashMap;
use std::fmt;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tenancy::{Tenant, TenantScope as _};

use super::BoxError;
use super::pg;
use super::workload::{Kind, NOTE_UNDONE};

/// How a transaction ended, as its caller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `commit` returned `Ok`: its rows must be there.
    Acknowledged,
    /// Failed or cancelled before `COMMIT` was sent: its rows must not be there.
    Failed,
    /// Failed or cancelled after `COMMIT` was sent: either all of its rows
    /// or none may be there, never some, never twice.
    Ambiguous,
}

/// What a run did, as counted by its workers.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub transactions: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub ambiguous: u64,
    pub cancelled: u64,
    pub errors: u64,
    pub by_kind: HashMap<String, u64>,
    pub first_errors: Vec<String>,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.by_kind.iter().collect();
        kinds.sort();
        write!(
            f,
            "{} transactions ({}): {} acknowledged, {} failed before COMMIT, {} ambiguous; \
             {} cancelled, {} errors",
            self.transactions,
            kinds
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.acknowledged,
            self.failed,
            self.ambiguous,
            self.cancelled,
            self.errors
        )
    }
}

/// One transaction's entry in the ledger.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub tenant: usize,
    pub kind: Kind,
    pub outcome: Outcome,
}

/// Every transaction's outcome, by op id.
#[derive(Default)]
pub struct Ledger {
    entries: std::sync::Mutex<HashMap<i64, Entry>>,
    counts: std::sync::Mutex<Counts>,
}

impl Ledger {
    pub fn record(&self, op: i64, entry: Entry, cancelled: bool, error: Option<String>) {
        self.entries.lock().unwrap().insert(op, entry);
        let mut counts = self.counts.lock().unwrap();
        counts.transactions += 1;
        *counts
            .by_kind
            .entry(format!("{:?}", entry.kind))
            .or_default() += 1;
        match entry.outcome {
            Outcome::Acknowledged => counts.acknowledged += 1,
            Outcome::Failed => counts.failed += 1,
            Outcome::Ambiguous => counts.ambiguous += 1,
        }
        if cancelled {
            counts.cancelled += 1;
        }
        if let Some(error) = error {
            counts.errors += 1;
            if counts.first_errors.len() < 5 {
                counts.first_errors.push(error);
            }
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }

    /// About how much memory the ledger itself holds (KiB): part of the
    /// process's RSS growth over a run is this bookkeeping, not the library.
    pub fn approx_kib(&self) -> u64 {
        let entries = self.entries.lock().unwrap();
        let per_slot = std::mem::size_of::<(i64, Entry)>() + 1;
        (entries.capacity() * per_slot / 1024) as u64
    }
}

/// What the final check found.
#[derive(Debug, Default)]
pub struct Verified {
    pub rows: u64,
    pub acknowledged_ops: u64,
    pub ambiguous_present: u64,
    pub ambiguous_absent: u64,
}

/// Reads every tenant's rows and the shared table, and compares them with
/// the ledger: acknowledged transactions all there, exactly once; failed
/// ones absent; ambiguous ones whole or absent; every row in its own
/// tenant's schema; nothing in `public.items`; no rolled-back savepoint row.
pub async fn verify(
    conn: &DatabaseConnection,
    tenants: &[Tenant],
    ledger: &Ledger,
) -> Result<Verified, BoxError> {
    let shared = pg::count(conn, "SELECT count(*) FROM public.items").await?;
    assert_eq!(shared, 0, "{shared} rows fell through to public.items");

    // (op, note) -> how many times, per schema's tenant index.
    let mut found: HashMap<(i64, String), Vec<usize>> = HashMap::new();
    let mut rows = 0;
    for chunk in tenants.chunks(200).enumerate() {
        let (chunk_no, chunk) = chunk;
        let sql = chunk
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    "SELECT {} AS idx, op, tenant, note FROM {}.items",
                    chunk_no * 200 + i,
                    t.schema().quoted()
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in conn
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await?
        {
            let idx = usize::try_from(row.try_get::<i32>("", "idx")?)?;
            let op: i64 = row.try_get("", "op")?;
            let owner: String = row.try_get("", "tenant")?;
            let note: String = row.try_get("", "note")?;
            assert_eq!(
                owner,
                tenants[idx].id().as_str(),
                "foreign row: op {op} of tenant {owner} is in {}",
                tenants[idx].schema()
            );
            assert_ne!(
                note, NOTE_UNDONE,
                "op {op}: a rolled-back savepoint's row is present"
            );
            found.entry((op, note)).or_default().push(idx);
            rows += 1;
        }
    }

    let entries = ledger.entries.lock().unwrap();
    for ((op, note), places) in &found {
        let entry = entries
            .get(op)
            .unwrap_or_else(|| panic!("row of op {op} ({note}) belongs to no transaction"));
        assert_eq!(
            places.len(),
            1,
            "op {op} ({note}) is present {} times: done twice",
            places.len()
        );
        assert_eq!(
            places[0], entry.tenant,
            "op {op} landed in another tenant's schema"
        );
    }
    let mut verified = Verified {
        rows,
        ..Verified::default()
    };
    for (op, entry) in entries.iter() {
        let expected = entry.kind.expected_notes();
        let present = expected
            .iter()
            .filter(|note| found.contains_key(&(*op, (**note).to_owned())))
            .count();
        match entry.outcome {
            Outcome::Acknowledged => {
                assert_eq!(
                    present,
                    expected.len(),
                    "op {op} ({:?}) was acknowledged but {present} of its {} rows are present: \
                     lost",
                    entry.kind,
                    expected.len()
                );
                if !expected.is_empty() {
                    verified.acknowledged_ops += 1;
                }
            }
            Outcome::Failed => assert_eq!(
                present, 0,
                "op {op} ({:?}) failed before COMMIT but {present} of its rows are present",
                entry.kind
            ),
            Outcome::Ambiguous => {
                assert!(
                    present == 0 || present == expected.len(),
                    "op {op} ({:?}) is half there: {present} of {} rows",
                    entry.kind,
                    expected.len()
                );
                if expected.is_empty() {
                } else if present == 0 {
                    verified.ambiguous_absent += 1;
                } else {
                    verified.ambiguous_present += 1;
                }
            }
        }
    }
    Ok(verified)
}
