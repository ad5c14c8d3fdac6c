//! Terraform values as the provider sees them, including the two states a
//! plain JSON value cannot express: null and unknown.
//!
//! Values carry no type of their own: the schema supplies it when they are
//! encoded or decoded (see [`crate::codec`]), which is also how Terraform's
//! wire formats work.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

use crate::types::Type;

/// A Terraform number. Integers that fit `i64` and finite floats are kept
/// natively; anything else keeps its exact decimal text, so that no digit
/// sent by Terraform is lost on the way back.
#[derive(Debug, Clone)]
pub enum Number {
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float that is not an integer.
    Float(f64),
    /// Exact decimal text for values beyond `i64`/`f64` precision.
    Big(String),
}

impl Number {
    /// Builds a number from decimal text, keeping full precision.
    pub fn parse(text: &str) -> Option<Number> {
        let t = text.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Some(Number::Int(i));
        }
        let f = t.parse::<f64>().ok()?;
        if !f.is_finite() {
            return None;
        }
        // Keep the float only if it prints back to the same value; otherwise
        // the text holds digits that f64 would drop.
        if same_decimal(&f.to_string(), t) {
            Some(Number::from_f64(f))
        } else {
            Some(Number::Big(t.to_string()))
        }
    }

    /// Builds a number from a float, normalising whole values to integers.
    pub fn from_f64(f: f64) -> Number {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            Number::Int(f as i64)
        } else {
            Number::Float(f)
        }
    }

    /// The value as `i64`, when it is a whole number in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::Float(_) => None,
            Number::Big(s) => s.parse().ok(),
        }
    }

    /// The value as `f64`, possibly rounded.
    pub fn as_f64(&self) -> f64 {
        match self {
            Number::Int(i) => *i as f64,
            Number::Float(f) => *f,
            Number::Big(s) => s.parse().unwrap_or(f64::NAN),
        }
    }
}

/// Compares two decimal strings numerically by their canonical text, so that
/// "1.50" and "1.5" count as the same decimal.
fn same_decimal(a: &str, b: &str) -> bool {
    fn canon(s: &str) -> String {
        let s = s.trim_start_matches('+');
        let lower = s.to_ascii_lowercase();
        if lower.contains('e') {
            return lower;
        }
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    }
    canon(a) == canon(b)
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
            Number::Big(s) => f.write_str(s),
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            _ => same_decimal(&self.to_string(), &other.to_string()),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number::Int(i)
    }
}

/// A Terraform value. Collections are untyped here; the schema's [`Type`]
/// says whether a `List` is a list, set or tuple, and whether a `Map` is a
/// map or an object.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Absent.
    #[default]
    Null,
    /// Known only after apply.
    Unknown,
    /// A bool.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list, set or tuple.
    List(Vec<Value>),
    /// A map or object.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A number value from an integer.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }

    /// An object or map value from name/value pairs.
    pub fn object<I, S>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        Value::Map(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True for `Unknown` at the top level (not looking inside collections).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// True when no part of the value is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) => items.iter().all(Value::is_wholly_known),
            Value::Map(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// An attribute of an object (or entry of a map); `Null` when absent or
    /// when `self` is not a map, so chains like `v.get("a").get("b")` are safe.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Map(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// A mutable attribute of an object, created as `Null` when missing.
    /// Returns `None` when `self` is not a map.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Map(m) => Some(m.entry(name.to_string()).or_default()),
            _ => None,
        }
    }

    /// Sets an attribute of an object; does nothing when `self` is not a map.
    pub fn set(&mut self, name: &str, v: Value) {
        if let Value::Map(m) = self {
            m.insert(name.to_string(), v);
        }
    }

    /// The string, when this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bool, when this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, when this is a known whole number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The elements, when this is a known list, set or tuple.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// The entries, when this is a known map or object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Converts a known value to plain JSON (for typed models via serde).
    /// Returns `None` if any part is unknown.
    pub fn to_json(&self) -> Option<Json> {
        Some(match self {
            Value::Null => Json::Null,
            Value::Unknown => return None,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => number_to_json(n),
            Value::String(s) => Json::String(s.clone()),
            Value::List(items) => {
                Json::Array(items.iter().map(Value::to_json).collect::<Option<_>>()?)
            }
            Value::Map(m) => Json::Object(
                m.iter()
                    .map(|(k, v)| Some((k.clone(), v.to_json()?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// Like [`Value::to_json`], but unknown parts become JSON null: for
    /// validation, where an unknown value cannot be checked yet.
    pub fn to_json_lossy(&self) -> Json {
        match self {
            Value::Null | Value::Unknown => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => number_to_json(n),
            Value::String(s) => Json::String(s.clone()),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json_lossy).collect()),
            Value::Map(m) => Json::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.to_json_lossy()))
                    .collect(),
            ),
        }
    }

    /// Builds a value of type `ty` from plain JSON (typically a serde model).
    /// Object attributes missing from the JSON become null, so models may
    /// skip `None` fields.
    pub fn from_json(j: &Json, ty: &Type) -> Result<Value, ValueError> {
        if j.is_null() {
            return Ok(Value::Null);
        }
        if crate::model::is_unknown_json(j) {
            return Ok(Value::Unknown);
        }
        let mismatch = || ValueError::Mismatch {
            expected: ty.to_string(),
            found: j.to_string(),
        };
        Ok(match ty {
            Type::Bool => Value::Bool(j.as_bool().ok_or_else(mismatch)?),
            Type::Number => match j {
                Json::Number(n) => {
                    Value::Number(Number::parse(&n.to_string()).ok_or_else(mismatch)?)
                }
                // Terraform converts numeric strings, and so do we.
                Json::String(s) => Value::Number(Number::parse(s).ok_or_else(mismatch)?),
                _ => return Err(mismatch()),
            },
            Type::String => match j {
                Json::String(s) => Value::String(s.clone()),
                Json::Number(n) => Value::String(n.to_string()),
                Json::Bool(b) => Value::String(b.to_string()),
                _ => return Err(mismatch()),
            },
            Type::Dynamic => Value::from_json_untyped(j),
            Type::List(t) | Type::Set(t) => Value::List(
                j.as_array()
                    .ok_or_else(mismatch)?
                    .iter()
                    .map(|e| Value::from_json(e, t))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Tuple(ts) => {
                let items = j.as_array().ok_or_else(mismatch)?;
                if items.len() != ts.len() {
                    return Err(mismatch());
                }
                Value::List(
                    items
                        .iter()
                        .zip(ts)
                        .map(|(e, t)| Value::from_json(e, t))
                        .collect::<Result<_, _>>()?,
                )
            }
            Type::Map(t) => Value::Map(
                j.as_object()
                    .ok_or_else(mismatch)?
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Value::from_json(v, t)?)))
                    .collect::<Result<_, ValueError>>()?,
            ),
            Type::Object(attrs) => {
                let obj = j.as_object().ok_or_else(mismatch)?;
                let mut out = BTreeMap::new();
                for (name, t) in attrs {
                    let v = match obj.get(name) {
                        Some(v) => Value::from_json(v, t)?,
                        None => Value::Null,
                    };
                    out.insert(name.clone(), v);
                }
                Value::Map(out)
            }
        })
    }

    fn from_json_untyped(j: &Json) -> Value {
        match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Number::parse(&n.to_string())
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(a) => Value::List(a.iter().map(Value::from_json_untyped).collect()),
            Json::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json_untyped(v)))
                    .collect(),
            ),
        }
    }

    /// Builds a value of type `ty` from any serde-serialisable model.
    pub fn from_model<T: serde::Serialize>(model: &T, ty: &Type) -> Result<Value, ValueError> {
        let j = serde_json::to_value(model).map_err(|e| ValueError::Model(e.to_string()))?;
        Value::from_json(&j, ty)
    }

    /// Reads a typed model from a wholly known value.
    pub fn to_model<T: serde::de::DeserializeOwned>(&self) -> Result<T, ValueError> {
        let j = self.to_json().ok_or(ValueError::Unknown)?;
        serde_json::from_value(j).map_err(|e| ValueError::Model(e.to_string()))
    }

    /// Reads a typed model of a configuration or plan of type `ty`: unknown
    /// parts read as [`Field::Unknown`](crate::model::Field), so validation
    /// and planning can tell them from null. A list, set or map of plain
    /// values that is partly unknown reads as unknown as a whole; one of
    /// objects (nested blocks) keeps each object, with its own unknowns.
    pub fn to_config_model<T: serde::de::DeserializeOwned>(
        &self,
        ty: &Type,
    ) -> Result<T, ValueError> {
        serde_json::from_value(self.to_json_marked(ty))
            .map_err(|e| ValueError::Model(e.to_string()))
    }

    /// Plain JSON with unknowns as the stand-in [`Field`](crate::model::Field)
    /// reads as unknown.
    fn to_json_marked(&self, ty: &Type) -> Json {
        let objects = |t: &Type| matches!(t, Type::Object(_));
        match (self, ty) {
            (Value::Unknown, _) => crate::model::unknown_json(),
            (Value::Map(m), Type::Object(attrs)) => Json::Object(
                m.iter()
                    .map(|(k, v)| {
                        let t = attrs.get(k).unwrap_or(&Type::Dynamic);
                        (k.clone(), v.to_json_marked(t))
                    })
                    .collect(),
            ),
            (Value::List(items), Type::List(t) | Type::Set(t)) if objects(t) => {
                Json::Array(items.iter().map(|i| i.to_json_marked(t)).collect())
            }
            (Value::Map(m), Type::Map(t)) if objects(t) => Json::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.to_json_marked(t)))
                    .collect(),
            ),
            (v, _) => v.to_json().unwrap_or_else(crate::model::unknown_json),
        }
    }

    /// This value with what changed between two typed models of it
    /// (`before` as read, `after` as modified) written in. Attributes the
    /// model left alone keep their exact value here: a model reads a partly
    /// unknown collection as wholly unknown, and writing that back would
    /// plan a value Terraform refuses as not matching the configuration.
    pub fn with_model_changes<T: serde::Serialize>(
        &self,
        before: &T,
        after: &T,
        ty: &Type,
    ) -> Result<Value, ValueError> {
        let json = |m: &T| serde_json::to_value(m).map_err(|e| ValueError::Model(e.to_string()));
        self.with_json_changes(&json(before)?, &json(after)?, ty)
    }

    fn with_json_changes(
        &self,
        before: &Json,
        after: &Json,
        ty: &Type,
    ) -> Result<Value, ValueError> {
        if before == after {
            return Ok(self.clone());
        }
        let marked = |j: &Json| crate::model::is_unknown_json(j);
        match (self, ty, before, after) {
            (Value::Map(m), Type::Object(attrs), Json::Object(b), Json::Object(a))
                if !marked(before) && !marked(after) =>
            {
                let mut out = BTreeMap::new();
                for (name, t) in attrs {
                    let v = m.get(name).unwrap_or(&Value::Null);
                    let (bj, aj) = (
                        b.get(name).unwrap_or(&Json::Null),
                        a.get(name).unwrap_or(&Json::Null),
                    );
                    out.insert(name.clone(), v.with_json_changes(bj, aj, t)?);
                }
                Ok(Value::Map(out))
            }
            (Value::List(items), Type::List(t), Json::Array(b), Json::Array(a))
                if items.len() == b.len() && b.len() == a.len() =>
            {
                Ok(Value::List(
                    items
                        .iter()
                        .zip(b.iter().zip(a))
                        .map(|(v, (bj, aj))| v.with_json_changes(bj, aj, t))
                        .collect::<Result<_, _>>()?,
                ))
            }
            _ => Value::from_json(after, ty),
        }
    }

    /// The value with every unknown part made null: what exists of a plan
    /// when an apply fails halfway (state must be wholly known).
    pub fn unknowns_to_null(&self) -> Value {
        match self {
            Value::Unknown => Value::Null,
            Value::List(items) => Value::List(items.iter().map(Value::unknowns_to_null).collect()),
            Value::Map(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.unknowns_to_null()))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Reads a typed model, treating unknown parts as null.
    pub fn to_model_lossy<T: serde::de::DeserializeOwned>(&self) -> Result<T, ValueError> {
        serde_json::from_value(self.to_json_lossy()).map_err(|e| ValueError::Model(e.to_string()))
    }
}

fn number_to_json(n: &Number) -> Json {
    match n {
        Number::Int(i) => Json::from(*i),
        Number::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Number::Big(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
            .unwrap_or(Json::Null),
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::int(i)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map(Into::into).unwrap_or(Value::Null)
    }
}

/// Errors converting between values, JSON and typed models.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// The JSON did not fit the schema type.
    #[error("expected {expected}, found {found}")]
    Mismatch {
        /// The type the schema asked for.
        expected: String,
        /// The JSON that was found instead.
        found: String,
    },
    /// A typed model needs a wholly known value.
    #[error("value is not yet known")]
    Unknown,
    /// serde could not map the value onto the model.
    #[error("{0}")]
    Model(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_full_precision() {
        let big = "123456789012345678901234567890.000000000000000001";
        assert_eq!(Number::parse(big).unwrap().to_string(), big);
        assert_eq!(Number::parse("42").unwrap(), Number::Int(42));
        assert_eq!(Number::parse("1.5").unwrap(), Number::Float(1.5));
        assert_eq!(Number::parse("1.50").unwrap(), Number::Float(1.5));
        assert!(Number::parse("nan").is_none());
    }

    #[test]
    fn json_conversion_fills_missing_object_attributes_with_null() {
        let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
        let v = Value::from_json(&serde_json::json!({"a": "x"}), &ty).unwrap();
        assert_eq!(v.get("a"), &Value::string("x"));
        assert!(v.get("b").is_null());
        assert!(v.as_map().unwrap().contains_key("b"));
    }

    #[test]
    fn unknown_blocks_strict_models_but_not_lossy_ones() {
        #[derive(serde::Deserialize)]
        struct M {
            a: Option<String>,
        }
        let v = Value::object([("a", Value::Unknown)]);
        assert!(v.to_model::<M>().is_err());
        assert!(v.to_model_lossy::<M>().unwrap().a.is_none());
    }

    #[test]
    fn type_mismatch_names_both_sides() {
        let err = Value::from_json(&serde_json::json!([1]), &Type::String).unwrap_err();
        assert_eq!(err.to_string(), "expected string, found [1]");
    }
}
