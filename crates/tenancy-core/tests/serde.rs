//! Deserializing validates: an invalid name in a config file is an error, not a value.
#![cfg(feature = "serde")]

use tenancy_core::{SchemaName, SharedSchema, TenantId};

#[test]
fn names_serialize_as_plain_strings() {
    let id = TenantId::new("acme-corp").unwrap();
    assert_eq!(serde_json::to_string(&id).unwrap(), r#""acme-corp""#);
    let schema: SchemaName = serde_json::from_str(r#""tenant_acme""#).unwrap();
    assert_eq!(schema.as_str(), "tenant_acme");
    let shared: SharedSchema = serde_json::from_str(r#""public""#).unwrap();
    assert_eq!(shared, SharedSchema::public());
}

#[test]
fn invalid_names_fail_to_deserialize_with_the_reason() {
    let err = serde_json::from_str::<SchemaName>(r#""public""#).unwrap_err();
    assert!(err.to_string().contains("shared system schema"), "{err}");
    let err = serde_json::from_str::<TenantId>(r#""Acme""#).unwrap_err();
    assert!(err.to_string().contains("\"Acme\""), "{err}");
    assert!(serde_json::from_str::<SchemaName>("42").is_err());
}
