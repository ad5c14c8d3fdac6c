//! Typed models of configuration, plans and state, read with serde: a
//! resource declares a struct with one field per attribute, so a misspelt
//! attribute name is a compile error rather than a silent null.
//!
//! Configuration and plans may hold values not known until apply. A model
//! read with [`Value::to_config_model`](crate::Value::to_config_model) uses
//! [`Field`] for those, which keeps null and unknown apart, as the
//! framework's `types.String` does; state, always known, reads into plain
//! `Option`s with [`Value::to_model`](crate::Value::to_model).
//!
//! Models are best declared `#[serde(deny_unknown_fields)]` and without
//! `#[serde(default)]`: Terraform always sends every attribute, so reading
//! then fails loudly unless the model's fields and the schema's attributes
//! are the same names.

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde::ser::{Serialize, Serializer};
use serde_json::Value as Json;

/// The JSON object an unknown value becomes on its way through serde: no
/// attribute of a real configuration is named with a NUL.
pub(crate) const UNKNOWN_KEY: &str = "\u{0}tfplugin6-unknown";

/// The JSON stand-in for an unknown value.
pub(crate) fn unknown_json() -> Json {
    let mut m = serde_json::Map::new();
    m.insert(UNKNOWN_KEY.to_string(), Json::Bool(true));
    Json::Object(m)
}

/// True for the stand-in of an unknown value.
pub(crate) fn is_unknown_json(j: &Json) -> bool {
    j.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key(UNKNOWN_KEY))
}

/// An attribute of a configuration or plan model: absent, not known until
/// apply, or known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field<T> {
    /// Not set.
    #[default]
    Null,
    /// Known only after apply.
    Unknown,
    /// Set to this.
    Known(T),
}

impl<T> Field<T> {
    /// The value, when known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Field::Known(v) => Some(v),
            _ => None,
        }
    }

    /// True when not set.
    pub fn is_null(&self) -> bool {
        matches!(self, Field::Null)
    }

    /// True when known only after apply.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Field::Unknown)
    }

    /// True when set to a known value.
    pub fn is_known(&self) -> bool {
        matches!(self, Field::Known(_))
    }
}

impl<T> From<Option<T>> for Field<T> {
    fn from(o: Option<T>) -> Field<T> {
        o.map(Field::Known).unwrap_or(Field::Null)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field<T>, D::Error> {
        let j = Json::deserialize(d)?;
        if j.is_null() {
            return Ok(Field::Null);
        }
        if is_unknown_json(&j) {
            return Ok(Field::Unknown);
        }
        T::deserialize(j)
            .map(Field::Known)
            .map_err(serde::de::Error::custom)
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Null => s.serialize_none(),
            Field::Unknown => unknown_json().serialize(s),
            Field::Known(v) => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Type, Value};

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Model {
        name: Field<String>,
        port: Field<i64>,
        tags: Field<std::collections::BTreeMap<String, String>>,
    }

    fn ty() -> Type {
        Type::object([
            ("name", Type::String),
            ("port", Type::Number),
            ("tags", Type::map(Type::String)),
        ])
    }

    #[test]
    fn null_unknown_and_known_stay_apart() {
        let v = Value::object([
            ("name", Value::string("a")),
            ("port", Value::Unknown),
            ("tags", Value::Null),
        ]);
        let m: Model = v.to_config_model(&ty()).unwrap();
        assert_eq!(m.name, Field::Known("a".to_string()));
        assert!(m.port.is_unknown());
        assert!(m.tags.is_null());
    }

    #[test]
    fn partly_unknown_collections_are_unknown_but_objects_keep_their_parts() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Inner {
            a: Field<String>,
            b: Field<String>,
        }
        let ty = Type::object([
            ("ids", Type::set(Type::String)),
            (
                "inner",
                Type::list(Type::object([("a", Type::String), ("b", Type::String)])),
            ),
        ]);
        let v = Value::object([
            ("ids", Value::List(vec![Value::string("x"), Value::Unknown])),
            (
                "inner",
                Value::List(vec![Value::object([
                    ("a", Value::string("known")),
                    ("b", Value::Unknown),
                ])]),
            ),
        ]);
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Top {
            ids: Field<Vec<String>>,
            inner: Field<Vec<Inner>>,
        }
        let m: Top = v.to_config_model(&ty).unwrap();
        assert!(m.ids.is_unknown());
        let inner = &m.inner.known().unwrap()[0];
        assert_eq!(inner.a, Field::Known("known".to_string()));
        assert!(inner.b.is_unknown());
    }

    #[test]
    fn models_write_back_with_their_unknowns() {
        let m = Model {
            name: Field::Known("a".into()),
            port: Field::Unknown,
            tags: Field::Null,
        };
        let v = Value::from_model(&m, &ty()).unwrap();
        assert_eq!(v.get("name"), &Value::string("a"));
        assert!(v.get("port").is_unknown());
        assert!(v.get("tags").is_null());
    }

    #[test]
    fn model_changes_leave_partly_unknown_collections_as_they_were() {
        #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        struct M {
            ids: Field<Vec<String>>,
            port: Field<i64>,
        }
        let ty = Type::object([("ids", Type::set(Type::String)), ("port", Type::Number)]);
        let partly = Value::List(vec![Value::string("a"), Value::Unknown]);
        let v = Value::object([("ids", partly.clone()), ("port", Value::Null)]);
        let before: M = v.to_config_model(&ty).unwrap();
        assert!(before.ids.is_unknown(), "read as wholly unknown");
        let mut after = before.clone();
        after.port = Field::Known(80);
        let planned = v.with_model_changes(&before, &after, &ty).unwrap();
        assert_eq!(planned.get("ids"), &partly, "kept exactly");
        assert_eq!(planned.get("port"), &Value::int(80));
    }

    #[test]
    fn a_misspelt_model_field_is_refused_not_null() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wrong {
            nmae: Field<String>,
        }
        let v = Value::object([("name", Value::string("a"))]);
        let ty = Type::object([("name", Type::String)]);
        let err = v.to_config_model::<Wrong>(&ty).map(|w| w.nmae).unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
    }
}
