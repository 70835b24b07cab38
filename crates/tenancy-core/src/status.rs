use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Where a tenant is in its lifecycle, as stored in the registry's `status`
/// column. Only [`TenantStatus::Active`] tenants may be scoped to.
///
/// ```
/// use tenancy::TenantStatus;
///
/// let status: TenantStatus = "suspended".parse()?;
/// assert_eq!(status, TenantStatus::Suspended);
/// assert!(!status.allows_access());
/// assert_eq!(TenantStatus::Active.as_str(), "active");
/// # Ok::<(), tenancy::NameError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TenantStatus {
    /// Being created: its schema or migrations are not complete yet.
    Provisioning,
    /// In service.
    Active,
    /// Kept, but access is refused (unpaid bill, abuse, maintenance).
    Suspended,
    /// Soft-deleted: the schema is kept but access is refused for good.
    Deleted,
}

impl TenantStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 4] = [
        Self::Provisioning,
        Self::Active,
        Self::Suspended,
        Self::Deleted,
    ];

    /// The value stored in the registry.
    ///
    /// ```
    /// assert_eq!(tenancy::TenantStatus::Deleted.as_str(), "deleted");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    /// Whether tenant-scoped access is allowed in this status.
    ///
    /// ```
    /// assert!(tenancy::TenantStatus::Active.allows_access());
    /// ```
    #[must_use]
    pub fn allows_access(self) -> bool {
        self == Self::Active
    }
}

impl FromStr for TenantStatus {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == input)
            .ok_or_else(|| Error::UnknownStatus {
                input: input.to_owned(),
            })
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// As the registry stores it (`"suspended"`), so JSON output reads like the table.
#[cfg(feature = "serde")]
impl serde::Serialize for TenantStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for TenantStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips() {
        for status in TenantStatus::ALL {
            assert_eq!(status.as_str().parse::<TenantStatus>().unwrap(), status);
        }
        assert!(matches!(
            "Active".parse::<TenantStatus>(),
            Err(Error::UnknownStatus { .. })
        ));
    }
}
