//! The conversions every validated name shares, written once.

/// Implements `FromStr`, `TryFrom<&str>`, `TryFrom<String>`, `Display`,
/// `AsRef<str>`, `Borrow<str>` and (behind `serde`) validating serde for a
/// `struct Name(Box<str>)` that has `fn new(&str) -> Result<Self, Error>`.
macro_rules! validated_name {
    ($name:ident) => {
        impl $name {
            /// The name as a plain string slice (unquoted).
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::new(input)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::Error;

            fn try_from(input: &str) -> Result<Self, Self::Error> {
                Self::new(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::Error;

            fn try_from(input: String) -> Result<Self, Self::Error> {
                Self::new(&input)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "serde")]
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        #[cfg(feature = "serde")]
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let raw = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(
                    deserializer,
                )?;
                Self::new(&raw).map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use validated_name;
