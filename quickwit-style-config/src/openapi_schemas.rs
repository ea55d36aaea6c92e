//! OpenAPI schemas of the config values that serde reads from strings of our own syntax
//! (`array<text>`, `500MB`, `%Y-%m-%d`): derived schemas would describe the Rust enums, not
//! what users write.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::{
    ByteSize, DateTimeInputFormat, FieldType, LeafFieldType, MergePolicyConfig, OutputFormat,
    StableLogMergePolicyConfig,
};

const NAMED_DATE_FORMATS: [&str; 8] = [
    "rfc3339",
    "rfc2822",
    "iso8601",
    "unix_timestamp",
    "unix_timestamp_secs",
    "unix_timestamp_millis",
    "unix_timestamp_micros",
    "unix_timestamp_nanos",
];

fn string_enum(values: impl IntoIterator<Item = String>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

/// A named format, or a strptime pattern (any string holding a `%` directive).
fn date_format(named: &[&str], description: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(string_enum(named.iter().map(|name| name.to_string()), ""))
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some("%")),
        )
        .description(Some(description))
        .into()
}

impl PartialSchema for FieldType {
    fn schema() -> RefOr<Schema> {
        let leaves = LeafFieldType::ALL.iter().map(|(name, _)| name.to_string());
        let arrays = LeafFieldType::ALL
            .iter()
            .map(|(name, _)| format!("array<{name}>"));
        string_enum(
            leaves.chain(arrays).chain(["object".to_string()]),
            "A leaf type, an array of one, or `object` (with `field_mappings`).",
        )
    }
}

impl ToSchema for FieldType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FieldType")
    }
}

impl PartialSchema for DateTimeInputFormat {
    fn schema() -> RefOr<Schema> {
        date_format(
            &NAMED_DATE_FORMATS,
            "How datetimes arrive: a named format or a strptime pattern such as `%Y-%m-%d %H:%M:%S`.",
        )
    }
}

impl ToSchema for DateTimeInputFormat {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DateTimeInputFormat")
    }
}

impl PartialSchema for OutputFormat {
    fn schema() -> RefOr<Schema> {
        // `unix_timestamp` guesses the unit on input only: hits need one.
        let mut named: Vec<&str> = vec!["base64", "hex"];
        named.extend(
            NAMED_DATE_FORMATS
                .iter()
                .filter(|name| **name != "unix_timestamp"),
        );
        date_format(
            &named,
            "How hits show values: `base64`/`hex` for bytes fields, a date format for datetime fields.",
        )
    }
}

impl ToSchema for OutputFormat {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OutputFormat")
    }
}

impl PartialSchema for ByteSize {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .pattern(Some(r"^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgGtT]i?)?[bB]?\s*$")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .minimum(Some(0)),
            )
            .description(Some(
                "A size: a number of bytes, or a string like `500MB` or `2GiB` (answers use `<n>B`).",
            ))
            .into()
    }
}

impl ToSchema for ByteSize {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ByteSize")
    }
}

/// Internally tagged (`type`) on a struct that denies unknown fields: a derived schema
/// would forbid the tag itself.
impl PartialSchema for MergePolicyConfig {
    fn schema() -> RefOr<Schema> {
        let tag = |name: &str| string_enum([name.to_string()], "");
        let mut stable_log = match StableLogMergePolicyConfig::schema() {
            RefOr::T(Schema::Object(object)) => object,
            _ => utoipa::openapi::schema::Object::new(),
        };
        stable_log
            .properties
            .insert("type".to_string(), tag("stable_log"));
        stable_log.required.push("type".to_string());
        let no_merge = ObjectBuilder::new()
            .property("type", tag("no_merge"))
            .required("type")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        OneOfBuilder::new()
            .item(stable_log)
            .item(no_merge)
            .description(Some(
                "Which immature splits merge: `stable_log` (the default) or `no_merge`.",
            ))
            .into()
    }
}

impl ToSchema for MergePolicyConfig {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("MergePolicyConfig")
    }
}
