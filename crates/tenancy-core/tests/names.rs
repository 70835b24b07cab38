//! Properties of the one validation function and the one quoting function.

use proptest::prelude::*;
use tenancy_core::{Error, SchemaName, SchemaNaming, SharedSchema, TenantId};

/// Every input an attacker or a careless caller could send, each of which must
/// never become a schema name.
const HOSTILE: &[&str] = &[
    "public",
    "PUBLIC",
    "Public",
    "pg_catalog",
    "pg_toast",
    "PG_TEMP_1",
    "information_schema",
    "select",
    "SELECT",
    "user",
    "1abc",
    "a-b",
    "a;drop schema x",
    "a\"b",
    "\"",
    "a b",
    " a",
    "a\n",
    "a\0b",
    "Ümlaut",
    "ümlaut",
    "tenant_é",
    "",
];

#[test]
fn hostile_inputs_are_rejected() {
    for input in HOSTILE {
        assert!(SchemaName::new(input).is_err(), "{input:?} was accepted");
    }
    let too_long = "a".repeat(64);
    assert!(matches!(
        SchemaName::new(&too_long),
        Err(Error::TooLong {
            len: 64,
            max: 63,
            ..
        })
    ));
}

#[test]
fn each_rejection_names_its_reason() {
    assert!(matches!(SchemaName::new(""), Err(Error::Empty { .. })));
    assert!(matches!(
        SchemaName::new("PUBLIC"),
        Err(Error::SystemSchema { input, .. }) if input == "PUBLIC"
    ));
    assert!(matches!(
        SchemaName::new("pg_toast"),
        Err(Error::SystemPrefix { .. })
    ));
    assert!(matches!(
        SchemaName::new("Select"),
        Err(Error::ReservedKeyword {
            keyword: "select",
            ..
        })
    ));
    assert!(matches!(
        SchemaName::new("1abc"),
        Err(Error::InvalidStart { character: '1', .. })
    ));
    assert!(matches!(
        SchemaName::new("a;drop schema x"),
        Err(Error::InvalidCharacter {
            position: 1,
            character: ';',
            ..
        })
    ));
    assert!(matches!(
        SchemaName::new("a\0b"),
        Err(Error::InvalidCharacter {
            position: 1,
            character: '\0',
            ..
        })
    ));
    assert!(matches!(
        SchemaName::new("tenant_é"),
        Err(Error::InvalidCharacter {
            position: 7,
            character: 'é',
            ..
        })
    ));
}

#[test]
fn error_messages_carry_the_input() {
    let message = SchemaName::new("a;drop schema x").unwrap_err().to_string();
    assert!(message.contains("a;drop schema x"), "{message}");
    assert!(message.contains("';'"), "{message}");
    let message = TenantId::new("Acme").unwrap_err().to_string();
    assert!(message.contains("\"Acme\""), "{message}");
}

#[test]
fn every_reserved_keyword_is_rejected_in_any_case() {
    for keyword in tenancy_core::RESERVED_KEYWORDS {
        assert!(SchemaName::new(keyword).is_err());
        assert!(SchemaName::new(&keyword.to_uppercase()).is_err());
        assert!(SharedSchema::new(keyword).is_err());
    }
    // Unreserved keywords are fine identifiers.
    assert!(SchemaName::new("schema").is_ok());
    assert!(SchemaName::new("tenant").is_ok());
}

#[test]
fn tenant_id_boundaries() {
    assert!(TenantId::new(&"a".repeat(63)).is_ok());
    assert!(matches!(
        TenantId::new(&"a".repeat(64)),
        Err(Error::TooLong { len: 64, .. })
    ));
    assert!(TenantId::new("0day").is_ok());
    assert!(matches!(
        TenantId::new("acme-"),
        Err(Error::InvalidEnd { character: '-', .. })
    ));
    assert!(matches!(
        TenantId::new("_acme"),
        Err(Error::InvalidStart { .. })
    ));
}

fn valid_schema_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,62}".prop_filter("system or reserved", |s| SchemaName::new(s).is_ok())
}

proptest! {
    #[test]
    fn accepted_names_round_trip_through_quoting(name in valid_schema_name()) {
        let schema = SchemaName::new(&name).unwrap();
        let quoted = schema.quoted();
        prop_assert_eq!(&quoted, &format!("\"{name}\""));
        let inner = &quoted[1..quoted.len() - 1];
        prop_assert!(!inner.contains('"'));
        prop_assert!(!quoted.chars().any(char::is_whitespace));
        prop_assert_eq!(&SchemaName::new(inner).unwrap(), &schema);
        prop_assert_eq!(&name.parse::<SchemaName>().unwrap(), &schema);
    }

    #[test]
    fn a_character_outside_the_set_is_rejected(
        head in "[a-z_]{1,20}",
        bad in any::<char>().prop_filter("allowed", |c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')),
        tail in "[a-z0-9_]{0,20}",
    ) {
        let input = format!("{head}{bad}{tail}");
        prop_assert!(SchemaName::new(&input).is_err());
        prop_assert!(SharedSchema::new(&input).is_err());
    }

    #[test]
    fn any_string_is_validated_without_panicking(input in any::<String>()) {
        if let Ok(schema) = SchemaName::new(&input) {
            prop_assert!(input.len() <= 63);
            prop_assert!(input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            prop_assert!(!schema.quoted()[1..].trim_end_matches('"').contains('"'));
        }
        let _ = TenantId::new(&input);
    }

    #[test]
    fn length_boundary_is_63_bytes(len in 1usize..=80) {
        let name = "t".repeat(len);
        prop_assert_eq!(SchemaName::new(&name).is_ok(), len <= 63);
    }

    #[test]
    fn every_tenant_id_maps_to_a_prefixed_schema(id in "[a-z0-9]([a-z0-9_-]{0,54}[a-z0-9])?") {
        let tenant = TenantId::new(&id).unwrap();
        let schema = SchemaNaming::default().schema_for(&tenant).unwrap();
        prop_assert_eq!(schema.as_str(), format!("tenant_{}", id.replace('-', "_")));
    }

    #[test]
    fn no_tenant_id_maps_to_a_spare_schema(
        id in "[a-z0-9]([a-z0-9_-]{0,40}[a-z0-9])?",
        prefix in "(|[a-z_][a-z0-9_]{0,10})",
        number in any::<u32>(),
    ) {
        let Ok(naming) = SchemaNaming::with_prefix(&prefix) else { return Ok(()) };
        if let Ok(schema) = naming.schema_for(&TenantId::new(&id).unwrap()) {
            prop_assert!(!naming.is_spare(schema.as_str()));
            prop_assert_ne!(schema, naming.spare_schema(u64::from(number)).unwrap());
        }
    }
}
