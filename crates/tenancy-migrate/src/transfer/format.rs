//! The export file's framing and manifest: everything about the bytes, and
//! nothing about the database. The layout is documented in the
//! [module docs](super).

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;

/// The first bytes of every export: what the file is, for `file(1)` and
/// for a reader handed the wrong file.
pub(super) const MAGIC: &[u8; 22] = b"TENANCY-TENANT-EXPORT\n";
/// The version of the layout and manifest this code writes and reads. A
/// reader refuses a version it does not know rather than guess.
pub(super) const FORMAT_VERSION: u32 = 1;
/// The last bytes: an export cut short (a full disk, a killed process) is
/// told apart from a complete one.
const TRAILER: &[u8; 4] = b"END\n";
/// A manifest is DDL text: far below this. A bigger length is a corrupt or
/// foreign file, refused before allocating it.
const MAX_MANIFEST: u64 = 256 * 1024 * 1024;

/// The manifest: what the tenant was, and the DDL to make it again.
///
/// Every DDL statement was rendered by the server's own `pg_get_*def`
/// functions and `format('%I')`, under a search path holding the tenant's
/// schema alone, so references to the tenant's own objects come out
/// unqualified and land in whichever schema the import pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// [`FORMAT_VERSION`], repeated for readers of the JSON alone.
    pub(super) format_version: u32,
    /// `server_version_num` of the exporting server.
    pub(super) server_version_num: i32,
    /// When the snapshot was taken (UTC, ISO 8601).
    pub(super) exported_at: String,
    /// The tenant's registry row.
    pub(super) tenant: TenantMeta,
    /// The session settings the data was written under, applied again with
    /// `SET LOCAL` on import so every value reads back the same.
    pub(super) data_settings: Vec<(String, String)>,
    /// Enums, composite types and domains, in creation (OID) order.
    pub(super) types: Vec<Definition>,
    /// Every sequence with its value; identity sequences have no DDL of
    /// their own (their column creates them).
    pub(super) sequences: Vec<SequenceDef>,
    /// Tables in name order, each with its data section.
    pub(super) tables: Vec<TableDef>,
    /// After the data: ownership of serial sequences, constraints (foreign
    /// keys last), indexes, comments.
    pub(super) post_data: Vec<String>,
}

/// The tenant's registry row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TenantMeta {
    pub(super) id: String,
    pub(super) schema: String,
    pub(super) display_name: String,
    pub(super) domain: Option<String>,
    pub(super) status: String,
}

/// One named object and the statement creating it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Definition {
    pub(super) name: String,
    pub(super) ddl: String,
}

/// A sequence and where it stood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SequenceDef {
    pub(super) name: String,
    /// `None` for an identity column's sequence.
    pub(super) ddl: Option<String>,
    /// `pg_sequence_last_value`: `None` until the first `nextval`.
    pub(super) last_value: Option<i64>,
}

/// A table and its data section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TableDef {
    pub(super) name: String,
    pub(super) ddl: String,
    /// `table (col, …)` for `COPY`: every column but generated ones. `None`
    /// when the table has no such column (its data section is empty).
    pub(super) copy_target: Option<String>,
}

/// Writes the header and the manifest.
pub(super) async fn write_head<W: AsyncWrite + Unpin>(
    out: &mut W,
    manifest: &Manifest,
) -> std::io::Result<u64> {
    let json = serde_json::to_vec(manifest)?;
    out.write_all(MAGIC).await?;
    out.write_u32(FORMAT_VERSION).await?;
    out.write_u64(json.len() as u64).await?;
    out.write_all(&json).await?;
    Ok((MAGIC.len() + 4 + 8 + json.len()) as u64)
}

/// Writes one frame of a table's data section (never empty: an empty frame
/// ends the section).
pub(super) async fn write_frame<W: AsyncWrite + Unpin>(
    out: &mut W,
    data: &[u8],
) -> std::io::Result<u64> {
    if data.is_empty() {
        return Ok(0);
    }
    let len = u32::try_from(data.len())
        .map_err(|_| std::io::Error::other("a COPY chunk larger than 4 GiB"))?;
    out.write_u32(len).await?;
    out.write_all(data).await?;
    Ok(4 + u64::from(len))
}

/// Ends a table's data section.
pub(super) async fn end_section<W: AsyncWrite + Unpin>(out: &mut W) -> std::io::Result<u64> {
    out.write_u32(0).await?;
    Ok(4)
}

/// Ends the export.
pub(super) async fn write_trailer<W: AsyncWrite + Unpin>(out: &mut W) -> std::io::Result<u64> {
    out.write_all(TRAILER).await?;
    out.flush().await?;
    Ok(TRAILER.len() as u64)
}

/// The error for input that is not a complete export of a known version.
pub(super) fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidExport {
        reason: reason.into(),
    }
}

/// Reading failed: cut short is a format problem, anything else is I/O.
fn read_err(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |err| {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            invalid(format!(
                "the input ends in the middle of {what}: it was cut short"
            ))
        } else {
            Error::TransferIo {
                action: "reading the export",
                source: err,
            }
        }
    }
}

/// Reads and checks the header, then the manifest.
pub(super) async fn read_head<R: AsyncRead + Unpin>(input: &mut R) -> Result<Manifest, Error> {
    let mut magic = [0_u8; MAGIC.len()];
    input
        .read_exact(&mut magic)
        .await
        .map_err(read_err("the header"))?;
    if &magic != MAGIC {
        return Err(invalid(
            "it does not start like a tenant export (written by TenantFleet::export_tenant)",
        ));
    }
    let version = input.read_u32().await.map_err(read_err("the header"))?;
    if version != FORMAT_VERSION {
        return Err(invalid(format!(
            "it is format version {version}, and this version of tenancy reads version \
             {FORMAT_VERSION} only: import it with the tenancy version that wrote it"
        )));
    }
    let len = input.read_u64().await.map_err(read_err("the header"))?;
    if len > MAX_MANIFEST {
        return Err(invalid(format!("its manifest claims {len} bytes")));
    }
    let mut json = vec![0_u8; usize::try_from(len).map_err(|_| invalid("manifest too long"))?];
    input
        .read_exact(&mut json)
        .await
        .map_err(read_err("the manifest"))?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|err| invalid(format!("its manifest does not parse: {err}")))?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(invalid(format!(
            "its manifest says format version {}, its header {FORMAT_VERSION}",
            manifest.format_version
        )));
    }
    Ok(manifest)
}

/// Reads the next frame of a table's data section into `buf`; `false` at
/// the end of the section.
pub(super) async fn read_frame<R: AsyncRead + Unpin>(
    input: &mut R,
    buf: &mut Vec<u8>,
) -> Result<bool, Error> {
    let len = input.read_u32().await.map_err(read_err("a table's data"))?;
    if len == 0 {
        return Ok(false);
    }
    buf.resize(len as usize, 0);
    input
        .read_exact(buf)
        .await
        .map_err(read_err("a table's data"))?;
    Ok(true)
}

/// Reads and checks the trailer.
pub(super) async fn read_trailer<R: AsyncRead + Unpin>(input: &mut R) -> Result<(), Error> {
    let mut trailer = [0_u8; TRAILER.len()];
    input
        .read_exact(&mut trailer)
        .await
        .map_err(read_err("the trailer"))?;
    if &trailer != TRAILER {
        return Err(invalid("it does not end with the export trailer"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            server_version_num: 150_000,
            exported_at: "2026-01-01T00:00:00Z".into(),
            tenant: TenantMeta {
                id: "acme".into(),
                schema: "tenant_acme".into(),
                display_name: "Acme".into(),
                domain: None,
                status: "active".into(),
            },
            data_settings: vec![("DateStyle".into(), "ISO, YMD".into())],
            types: vec![],
            sequences: vec![],
            tables: vec![TableDef {
                name: "t".into(),
                ddl: "CREATE TABLE t (a int)".into(),
                copy_target: Some("t (a)".into()),
            }],
            post_data: vec![],
        }
    }

    async fn written() -> Vec<u8> {
        let mut out = Vec::new();
        write_head(&mut out, &manifest()).await.unwrap();
        write_frame(&mut out, b"1\n").await.unwrap();
        write_frame(&mut out, b"").await.unwrap();
        write_frame(&mut out, b"2\n").await.unwrap();
        end_section(&mut out).await.unwrap();
        write_trailer(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_written_export_reads_back() {
        let bytes = written().await;
        let mut input = &bytes[..];
        assert_eq!(read_head(&mut input).await.unwrap(), manifest());
        let mut buf = Vec::new();
        let mut data = Vec::new();
        while read_frame(&mut input, &mut buf).await.unwrap() {
            data.extend_from_slice(&buf);
        }
        assert_eq!(data, b"1\n2\n");
        read_trailer(&mut input).await.unwrap();
        assert!(input.is_empty());
    }

    #[tokio::test]
    async fn a_cut_short_or_foreign_file_is_refused_by_name() {
        let bytes = written().await;
        let cut = &bytes[..bytes.len() - 2];
        let mut input = cut;
        read_head(&mut input).await.unwrap();
        let mut buf = Vec::new();
        while read_frame(&mut input, &mut buf).await.unwrap() {}
        let err = read_trailer(&mut input).await.unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");

        let err = read_head(&mut &b"PGDMP\0\0\0 not ours at all"[..])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not start like"), "{err}");

        let mut other_version = bytes.clone();
        other_version[MAGIC.len() + 3] = 9;
        let err = read_head(&mut &other_version[..]).await.unwrap_err();
        assert!(err.to_string().contains("format version 9"), "{err}");
    }
}
