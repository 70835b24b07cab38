use crate::error::{Error, NameKind};

/// The application's stable identifier for a tenant: a slug such as `acme-corp`.
///
/// Rules, chosen so that a tenant id is also a valid DNS label (and so can be a
/// subdomain) and maps predictably onto a schema name:
/// - 1 to 63 bytes ([`TenantId::MAX_LEN`]);
/// - lowercase ASCII letters, digits, `-` and `_` only;
/// - starts with a letter or digit, and does not end with `-` or `_`.
///
/// Uppercase is rejected rather than folded: normalising is the resolver's job
/// (hosts are case-insensitive), and an identifier that silently changes is a
/// source of duplicate tenants.
///
/// ```
/// use tenancy::TenantId;
///
/// let id: TenantId = "acme-corp".parse()?;
/// assert_eq!(id.as_str(), "acme-corp");
/// assert_eq!(id.to_string(), "acme-corp");
///
/// assert!(TenantId::new("Acme").is_err());
/// assert!(TenantId::new("-acme").is_err());
/// assert!(TenantId::new("").is_err());
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Box<str>);

const TENANT_ID_ALLOWED: &str = "lowercase ASCII letters, digits, '-' and '_'";

impl TenantId {
    /// The longest tenant id, in bytes: the length of a DNS label.
    pub const MAX_LEN: usize = 63;

    /// Validates `input` as a tenant id.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::TooLong`], [`Error::InvalidStart`],
    /// [`Error::InvalidCharacter`] or [`Error::InvalidEnd`], each carrying the input.
    ///
    /// ```
    /// use tenancy::{NameError as Error, TenantId};
    ///
    /// let err = TenantId::new("acme corp").unwrap_err();
    /// assert!(matches!(err, Error::InvalidCharacter { position: 4, character: ' ', .. }));
    /// ```
    pub fn new(input: &str) -> Result<Self, Error> {
        let kind = NameKind::TenantId;
        let (Some(first), Some(last)) = (input.chars().next(), input.chars().next_back()) else {
            return Err(Error::Empty { kind });
        };
        if input.len() > Self::MAX_LEN {
            return Err(Error::TooLong {
                kind,
                input: input.to_owned(),
                len: input.len(),
                max: Self::MAX_LEN,
            });
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(Error::InvalidStart {
                kind,
                input: input.to_owned(),
                character: first,
                expected: "a lowercase ASCII letter or a digit",
            });
        }
        if let Some((position, character)) = input
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'))
        {
            return Err(Error::InvalidCharacter {
                kind,
                input: input.to_owned(),
                position,
                character,
                allowed: TENANT_ID_ALLOWED,
            });
        }
        if last == '-' || last == '_' {
            return Err(Error::InvalidEnd {
                kind,
                input: input.to_owned(),
                character: last,
            });
        }
        Ok(Self(input.into()))
    }
}

crate::newtype::validated_name!(TenantId);
