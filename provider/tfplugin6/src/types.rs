//! Terraform's value types (cty types) and their JSON wire encoding, which is
//! how schemas declare attribute types and how dynamic values carry theirs.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// A Terraform (cty) type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number`, arbitrary precision.
    Number,
    /// `string`
    String,
    /// `any`: the value carries its own type on the wire.
    Dynamic,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `object({...})`; attribute names are kept sorted, as cty does.
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`
    Tuple(Vec<Type>),
}

/// Errors met while reading a type from its JSON encoding.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    /// The bytes were not JSON.
    #[error("type is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON did not describe a type.
    #[error("unsupported type description: {0}")]
    Unsupported(String),
}

impl Type {
    /// `list(T)`
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }
    /// `set(T)`
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }
    /// `map(T)`
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }
    /// `object({...})` from name/type pairs.
    pub fn object<I, S>(attrs: I) -> Type
    where
        I: IntoIterator<Item = (S, Type)>,
        S: Into<String>,
    {
        Type::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The JSON form Terraform expects in schemas (`"string"`, `["list","string"]`, ...).
    pub fn to_json(&self) -> Json {
        match self {
            Type::Bool => Json::from("bool"),
            Type::Number => Json::from("number"),
            Type::String => Json::from("string"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(t) => Json::Array(vec!["list".into(), t.to_json()]),
            Type::Set(t) => Json::Array(vec!["set".into(), t.to_json()]),
            Type::Map(t) => Json::Array(vec!["map".into(), t.to_json()]),
            Type::Object(attrs) => Json::Array(vec![
                "object".into(),
                Json::Object(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_json()))
                        .collect(),
                ),
            ]),
            Type::Tuple(elems) => Json::Array(vec![
                "tuple".into(),
                Json::Array(elems.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// The JSON form as bytes, as schema attributes carry it.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Reads a type from its JSON encoding.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, TypeError> {
        Type::from_json(&serde_json::from_slice(bytes)?)
    }

    /// Reads a type from an already parsed JSON value.
    pub fn from_json(j: &Json) -> Result<Type, TypeError> {
        let bad = || TypeError::Unsupported(j.to_string());
        match j {
            Json::String(s) => match s.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(bad()),
            },
            Json::Array(parts) => {
                let kind = parts.first().and_then(Json::as_str).ok_or_else(bad)?;
                let arg = parts.get(1).ok_or_else(bad)?;
                match kind {
                    "list" => Ok(Type::list(Type::from_json(arg)?)),
                    "set" => Ok(Type::set(Type::from_json(arg)?)),
                    "map" => Ok(Type::map(Type::from_json(arg)?)),
                    // A third element lists optional attributes; it only
                    // matters for type conversion in core, not for values.
                    "object" => {
                        let attrs = arg.as_object().ok_or_else(bad)?;
                        let mut out = BTreeMap::new();
                        for (k, v) in attrs {
                            out.insert(k.clone(), Type::from_json(v)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let elems = arg.as_array().ok_or_else(bad)?;
                        Ok(Type::Tuple(
                            elems
                                .iter()
                                .map(Type::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }

    /// The element type of a list, set or map.
    pub fn element(&self) -> Option<&Type> {
        match self {
            Type::List(t) | Type::Set(t) | Type::Map(t) => Some(t),
            _ => None,
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("any"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (k, v)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("})")
            }
            Type::Tuple(elems) => {
                f.write_str("tuple([")?;
                for (i, t) in elems.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_of_nested_types() {
        let t = Type::object([
            ("name", Type::String),
            ("tags", Type::map(Type::String)),
            (
                "rules",
                Type::list(Type::object([("priority", Type::Number)])),
            ),
            ("pair", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
            ("ids", Type::set(Type::String)),
        ]);
        let back = Type::from_json_bytes(&t.to_json_bytes()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn object_with_optional_attribute_list_is_read() {
        let t = Type::from_json_bytes(br#"["object",{"a":"string"},["a"]]"#).unwrap();
        assert_eq!(t, Type::object([("a", Type::String)]));
    }

    #[test]
    fn unknown_primitive_is_refused() {
        assert!(Type::from_json_bytes(br#""float""#).is_err());
        assert!(Type::from_json_bytes(br#"["list"]"#).is_err());
    }
}
