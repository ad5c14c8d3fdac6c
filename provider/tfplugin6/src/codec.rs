//! DynamicValue encoding: Terraform's msgpack form (which carries unknowns
//! as an extension type) and its JSON form (used for stored state), both
//! driven by the schema's type, as in cty.

use std::collections::BTreeMap;

use rmpv::Value as Mp;

use crate::types::Type;
use crate::value::{Number, Value};

/// Errors decoding or encoding a DynamicValue.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes were not valid msgpack.
    #[error("malformed msgpack: {0}")]
    Msgpack(String),
    /// The bytes were not valid JSON.
    #[error("malformed JSON at byte {at}: {msg}")]
    Json {
        /// Byte offset of the problem.
        at: usize,
        /// What was wrong.
        msg: &'static str,
    },
    /// The data did not match the schema type.
    #[error("{path}: expected {expected}")]
    Mismatch {
        /// Where in the value, as a dotted path.
        path: String,
        /// The type expected there.
        expected: String,
    },
    /// An unknown value where the encoding cannot express one (JSON).
    #[error("{0}: unknown values cannot be encoded as JSON")]
    UnknownInJson(String),
}

fn mismatch(path: &str, ty: &Type) -> CodecError {
    CodecError::Mismatch {
        path: if path.is_empty() {
            "(root)".into()
        } else {
            path.into()
        },
        expected: ty.to_string(),
    }
}

fn child(path: &str, step: impl std::fmt::Display) -> String {
    if path.is_empty() {
        step.to_string()
    } else {
        format!("{path}.{step}")
    }
}

// ---------------------------------------------------------------- msgpack

/// Decodes a msgpack DynamicValue of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut rd = bytes;
    let mp = rmpv::decode::read_value(&mut rd).map_err(|e| CodecError::Msgpack(e.to_string()))?;
    if !rd.is_empty() {
        return Err(CodecError::Msgpack(format!("{} trailing bytes", rd.len())));
    }
    from_mp(&mp, ty, "")
}

fn from_mp(mp: &Mp, ty: &Type, path: &str) -> Result<Value, CodecError> {
    match mp {
        Mp::Nil => return Ok(Value::Null),
        // Type 0 is a plain unknown; type 12 is an unknown with refinements
        // (prefix, not-null, ranges). Refinements only narrow what the value
        // may become, so treating both as unknown is always sound.
        Mp::Ext(_, _) => return Ok(Value::Unknown),
        _ => {}
    }
    let bad = || mismatch(path, ty);
    Ok(match ty {
        Type::Bool => Value::Bool(mp.as_bool().ok_or_else(bad)?),
        Type::String => Value::String(mp_str(mp).ok_or_else(bad)?),
        Type::Number => Value::Number(match mp {
            Mp::Integer(i) => match i.as_i64() {
                Some(v) => Number::Int(v),
                None => Number::parse(&i.to_string()).ok_or_else(bad)?,
            },
            Mp::F32(f) => Number::from_f64(f64::from(*f)),
            Mp::F64(f) => Number::from_f64(*f),
            Mp::String(_) | Mp::Binary(_) => {
                Number::parse(&mp_str(mp).ok_or_else(bad)?).ok_or_else(bad)?
            }
            _ => return Err(bad()),
        }),
        Type::List(t) | Type::Set(t) => {
            let items = mp.as_array().ok_or_else(bad)?;
            Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| from_mp(e, t, &child(path, i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Tuple(ts) => {
            let items = mp.as_array().ok_or_else(bad)?;
            if items.len() != ts.len() {
                return Err(bad());
            }
            Value::List(
                items
                    .iter()
                    .zip(ts)
                    .enumerate()
                    .map(|(i, (e, t))| from_mp(e, t, &child(path, i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Map(t) => {
            let entries = mp.as_map().ok_or_else(bad)?;
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let k = mp_str(k).ok_or_else(bad)?;
                let v = from_mp(v, t, &child(path, &k))?;
                out.insert(k, v);
            }
            Value::Map(out)
        }
        Type::Object(attrs) => {
            let entries = mp.as_map().ok_or_else(bad)?;
            let mut given = BTreeMap::new();
            for (k, v) in entries {
                given.insert(mp_str(k).ok_or_else(bad)?, v);
            }
            let mut out = BTreeMap::new();
            for (name, t) in attrs {
                let v = match given.get(name) {
                    Some(v) => from_mp(v, t, &child(path, name))?,
                    None => Value::Null,
                };
                out.insert(name.clone(), v);
            }
            Value::Map(out)
        }
        Type::Dynamic => {
            // Known dynamic values travel as [type JSON, value].
            let pair = mp.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
            let ty_json = match &pair[0] {
                Mp::Binary(b) => b.clone(),
                Mp::String(s) => s.as_bytes().to_vec(),
                _ => return Err(bad()),
            };
            let inner = Type::from_json_bytes(&ty_json).map_err(|_| bad())?;
            from_mp(&pair[1], &inner, path)?
        }
    })
}

fn mp_str(mp: &Mp) -> Option<String> {
    match mp {
        Mp::String(s) => s.as_str().map(str::to_string),
        Mp::Binary(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

/// Encodes a value of type `ty` as msgpack.
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mp = to_mp(v, ty, "")?;
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &mp).map_err(|e| CodecError::Msgpack(e.to_string()))?;
    Ok(out)
}

fn to_mp(v: &Value, ty: &Type, path: &str) -> Result<Mp, CodecError> {
    match v {
        Value::Null => return Ok(Mp::Nil),
        Value::Unknown => return Ok(Mp::Ext(0, vec![0])),
        _ => {}
    }
    let bad = || mismatch(path, ty);
    Ok(match (ty, v) {
        (Type::Bool, Value::Bool(b)) => Mp::Boolean(*b),
        (Type::String, Value::String(s)) => Mp::String(s.as_str().into()),
        (Type::Number, Value::Number(n)) => match n {
            Number::Int(i) => Mp::Integer((*i).into()),
            Number::Float(f) => Mp::F64(*f),
            Number::Big(s) => Mp::String(s.as_str().into()),
        },
        (Type::List(t) | Type::Set(t), Value::List(items)) => Mp::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, e)| to_mp(e, t, &child(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (Type::Tuple(ts), Value::List(items)) if ts.len() == items.len() => Mp::Array(
            items
                .iter()
                .zip(ts)
                .enumerate()
                .map(|(i, (e, t))| to_mp(e, t, &child(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (Type::Map(t), Value::Map(m)) => Mp::Map(
            m.iter()
                .map(|(k, e)| Ok((Mp::String(k.as_str().into()), to_mp(e, t, &child(path, k))?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        (Type::Object(attrs), Value::Map(m)) => {
            // Terraform requires every attribute of an object to be present.
            let mut out = Vec::with_capacity(attrs.len());
            for (name, t) in attrs {
                let e = m.get(name).unwrap_or(&Value::Null);
                out.push((
                    Mp::String(name.as_str().into()),
                    to_mp(e, t, &child(path, name))?,
                ));
            }
            Mp::Map(out)
        }
        (Type::Dynamic, _) => {
            let inner = infer_type(v);
            Mp::Array(vec![
                Mp::Binary(inner.to_json_bytes()),
                to_mp(v, &inner, path)?,
            ])
        }
        _ => return Err(bad()),
    })
}

/// The most specific type for an untyped value: what a dynamic attribute
/// reports when a provider sets it.
pub fn infer_type(v: &Value) -> Type {
    match v {
        Value::Null | Value::Unknown => Type::Dynamic,
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) => Type::String,
        Value::List(items) => Type::Tuple(items.iter().map(infer_type).collect()),
        Value::Map(m) => Type::Object(m.iter().map(|(k, v)| (k.clone(), infer_type(v))).collect()),
    }
}

// ------------------------------------------------------------------- JSON

/// Decodes a JSON DynamicValue (or stored state) of type `ty`, keeping
/// numbers at full precision.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let tree = JsonParser::parse(bytes)?;
    from_tree(&tree, ty, "")
}

/// Parsed JSON that keeps the literal text of numbers.
#[derive(Debug)]
enum Tree {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Tree>),
    Obj(Vec<(String, Tree)>),
}

fn from_tree(t: &Tree, ty: &Type, path: &str) -> Result<Value, CodecError> {
    if let Tree::Null = t {
        return Ok(Value::Null);
    }
    let bad = || mismatch(path, ty);
    Ok(match (ty, t) {
        (Type::Bool, Tree::Bool(b)) => Value::Bool(*b),
        (Type::String, Tree::Str(s)) => Value::String(s.clone()),
        (Type::Number, Tree::Num(n) | Tree::Str(n)) => {
            Value::Number(Number::parse(n).ok_or_else(bad)?)
        }
        (Type::List(e) | Type::Set(e), Tree::Arr(items)) => Value::List(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| from_tree(x, e, &child(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (Type::Tuple(ts), Tree::Arr(items)) if ts.len() == items.len() => Value::List(
            items
                .iter()
                .zip(ts)
                .enumerate()
                .map(|(i, (x, t))| from_tree(x, t, &child(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (Type::Map(e), Tree::Obj(entries)) => Value::Map(
            entries
                .iter()
                .map(|(k, x)| Ok((k.clone(), from_tree(x, e, &child(path, k))?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        (Type::Object(attrs), Tree::Obj(entries)) => {
            let given: BTreeMap<&str, &Tree> =
                entries.iter().map(|(k, v)| (k.as_str(), v)).collect();
            let mut out = BTreeMap::new();
            for (name, at) in attrs {
                let v = match given.get(name.as_str()) {
                    Some(x) => from_tree(x, at, &child(path, name))?,
                    None => Value::Null,
                };
                out.insert(name.clone(), v);
            }
            Value::Map(out)
        }
        (Type::Dynamic, Tree::Obj(entries)) => {
            // Dynamic values in JSON are {"value": ..., "type": ...}.
            let find = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            let ty_tree = find("type").ok_or_else(bad)?;
            let inner = Type::from_json(&tree_to_serde(ty_tree)).map_err(|_| bad())?;
            from_tree(find("value").unwrap_or(&Tree::Null), &inner, path)?
        }
        _ => return Err(bad()),
    })
}

fn tree_to_serde(t: &Tree) -> serde_json::Value {
    use serde_json::Value as J;
    match t {
        Tree::Null => J::Null,
        Tree::Bool(b) => J::Bool(*b),
        Tree::Num(n) => n.parse::<f64>().ok().map(J::from).unwrap_or(J::Null),
        Tree::Str(s) => J::String(s.clone()),
        Tree::Arr(a) => J::Array(a.iter().map(tree_to_serde).collect()),
        Tree::Obj(o) => J::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), tree_to_serde(v)))
                .collect(),
        ),
    }
}

/// Encodes a wholly known value of type `ty` as JSON.
pub fn encode_json(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = String::new();
    write_json(&mut out, v, ty, "")?;
    Ok(out.into_bytes())
}

fn write_json(out: &mut String, v: &Value, ty: &Type, path: &str) -> Result<(), CodecError> {
    use std::fmt::Write;
    let bad = || mismatch(path, ty);
    match (ty, v) {
        (_, Value::Null) => out.push_str("null"),
        (_, Value::Unknown) => return Err(CodecError::UnknownInJson(path.to_string())),
        (Type::Bool, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (Type::Number, Value::Number(n)) => {
            let _ = write!(out, "{n}");
        }
        (Type::String, Value::String(s)) => {
            out.push_str(&serde_json::Value::String(s.clone()).to_string())
        }
        (Type::List(e) | Type::Set(e), Value::List(items)) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, x, e, &child(path, i))?;
            }
            out.push(']');
        }
        (Type::Tuple(ts), Value::List(items)) if ts.len() == items.len() => {
            out.push('[');
            for (i, (x, t)) in items.iter().zip(ts).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, x, t, &child(path, i))?;
            }
            out.push(']');
        }
        (Type::Map(e), Value::Map(m)) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write_json(out, x, e, &child(path, k))?;
            }
            out.push('}');
        }
        (Type::Object(attrs), Value::Map(m)) => {
            out.push('{');
            for (i, (k, t)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write_json(out, m.get(k).unwrap_or(&Value::Null), t, &child(path, k))?;
            }
            out.push('}');
        }
        (Type::Dynamic, _) => {
            let inner = infer_type(v);
            out.push_str("{\"value\":");
            write_json(out, v, &inner, path)?;
            out.push_str(",\"type\":");
            out.push_str(&inner.to_json().to_string());
            out.push('}');
        }
        _ => return Err(bad()),
    }
    Ok(())
}

/// A small strict JSON parser; serde_json would round numbers to f64
/// unless its workspace-wide arbitrary-precision mode were on, which changes
/// number handling for every other crate in the binary.
struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

/// Deeply nested input is refused rather than overflowing the stack.
const MAX_JSON_DEPTH: usize = 512;

impl<'a> JsonParser<'a> {
    fn parse(b: &'a [u8]) -> Result<Tree, CodecError> {
        let mut p = JsonParser { b, i: 0 };
        let t = p.value(0)?;
        p.ws();
        if p.i != p.b.len() {
            return Err(p.err("trailing data"));
        }
        Ok(t)
    }

    fn err(&self, msg: &'static str) -> CodecError {
        CodecError::Json { at: self.i, msg }
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Tree, CodecError> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'n') if self.eat(b"null") => Ok(Tree::Null),
            Some(b't') if self.eat(b"true") => Ok(Tree::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Tree::Bool(false)),
            Some(b'"') => Ok(Tree::Str(self.string()?)),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b"]") {
                    return Ok(Tree::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"]") {
                        return Ok(Tree::Arr(items));
                    }
                    return Err(self.err("expected , or ]"));
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.eat(b"}") {
                    return Ok(Tree::Obj(entries));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(b":") {
                        return Err(self.err("expected :"));
                    }
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"}") {
                        return Ok(Tree::Obj(entries));
                    }
                    return Err(self.err("expected , or }"));
                }
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
                    )
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.b[start..self.i])
                    .map_err(|_| self.err("bad number"))?;
                if Number::parse(text).is_none() {
                    return Err(self.err("bad number"));
                }
                Ok(Tree::Num(text.to_string()))
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn string(&mut self) -> Result<String, CodecError> {
        // Find the closing quote, then let serde_json handle escapes, which
        // it does exactly; only numbers needed our own parsing.
        let start = self.i;
        self.i += 1;
        loop {
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'\\') => self.i += 2,
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(_) => self.i += 1,
            }
        }
        serde_json::from_slice(&self.b[start..self.i]).map_err(|_| self.err("bad string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("count", Type::Number),
            ("enabled", Type::Bool),
            ("tags", Type::map(Type::String)),
            (
                "rule",
                Type::list(Type::object([
                    ("id", Type::String),
                    ("priority", Type::Number),
                ])),
            ),
            ("extra", Type::Dynamic),
        ])
    }

    #[test]
    fn msgpack_round_trip_with_null_unknown_and_nesting() {
        let ty = sample_type();
        let v = Value::object([
            ("name", Value::string("api")),
            ("count", Value::Unknown),
            ("enabled", Value::Null),
            ("tags", Value::object([("env", Value::string("prod"))])),
            (
                "rule",
                Value::List(vec![Value::object([
                    ("id", Value::string("r1")),
                    ("priority", Value::Number(Number::parse("1.25").unwrap())),
                ])]),
            ),
            (
                "extra",
                Value::List(vec![Value::string("x"), Value::Bool(true)]),
            ),
        ]);
        let bytes = encode_msgpack(&v, &ty).unwrap();
        assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), v);
    }

    #[test]
    fn refined_unknown_extension_decodes_as_unknown() {
        // fixext1 type 12 (refinements) as core 1.6+ sends it.
        assert_eq!(
            decode_msgpack(&[0xd4, 12, 0], &Type::String).unwrap(),
            Value::Unknown
        );
    }

    #[test]
    fn big_numbers_survive_both_encodings() {
        let n = "98765432109876543210.123456789";
        let v = Value::Number(Number::parse(n).unwrap());
        let mp = encode_msgpack(&v, &Type::Number).unwrap();
        assert_eq!(
            decode_msgpack(&mp, &Type::Number).unwrap().to_json_lossy(),
            v.to_json_lossy()
        );
        match decode_msgpack(&mp, &Type::Number).unwrap() {
            Value::Number(x) => assert_eq!(x.to_string(), n),
            other => panic!("got {other:?}"),
        }
        let js = encode_json(&v, &Type::Number).unwrap();
        assert_eq!(String::from_utf8(js.clone()).unwrap(), n);
        match decode_json(&js, &Type::Number).unwrap() {
            Value::Number(x) => assert_eq!(x.to_string(), n),
            other => panic!("got {other:?}"),
        }
    }

    #[test]
    fn json_state_missing_attributes_become_null() {
        let v = decode_json(br#"{"name":"a","tags":{"k":"v"}}"#, &sample_type()).unwrap();
        assert_eq!(v.get("name"), &Value::string("a"));
        assert!(v.get("count").is_null());
        assert!(v.get("rule").is_null());
    }

    #[test]
    fn json_dynamic_values_carry_their_type() {
        let ty = Type::object([("extra", Type::Dynamic)]);
        let v = Value::object([("extra", Value::object([("a", Value::int(1))]))]);
        let js = encode_json(&v, &ty).unwrap();
        assert_eq!(
            String::from_utf8(js.clone()).unwrap(),
            r#"{"extra":{"value":{"a":1},"type":["object",{"a":"number"}]}}"#
        );
        assert_eq!(decode_json(&js, &ty).unwrap(), v);
    }

    #[test]
    fn type_mismatch_reports_the_path() {
        let ty = Type::object([("rule", Type::list(Type::object([("id", Type::String)])))]);
        let err = decode_json(br#"{"rule":[{"id":5}]}"#, &ty).unwrap_err();
        assert_eq!(err.to_string(), "rule.0.id: expected string");
    }

    #[test]
    fn unknown_cannot_be_written_as_json() {
        let ty = Type::object([("a", Type::String)]);
        let v = Value::object([("a", Value::Unknown)]);
        assert!(matches!(
            encode_json(&v, &ty),
            Err(CodecError::UnknownInJson(_))
        ));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        for bad in [
            &b"{"[..],
            b"[1,",
            b"{\"a\" 1}",
            b"nul",
            b"\"abc",
            b"1 2",
            b"-",
        ] {
            assert!(decode_json(bad, &Type::Dynamic).is_err(), "{:?}", bad);
        }
        assert!(decode_msgpack(&[0x92, 0x01], &Type::list(Type::Number)).is_err());
        assert!(decode_msgpack(&[0xc0, 0xc0], &Type::String).is_err());
        let deep = "[".repeat(10_000);
        assert!(decode_json(deep.as_bytes(), &Type::Dynamic).is_err());
    }

    fn arb_value() -> impl Strategy<Value = (Value, Type)> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(|b| (Value::Bool(b), Type::Bool)),
            any::<i64>().prop_map(|i| (Value::int(i), Type::Number)),
            "[a-z\\\\\"\u{e9}\u{1F600}]{0,8}".prop_map(|s| (Value::String(s), Type::String)),
            Just((Value::Null, Type::String)),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(|m| {
                let ty = Type::Object(m.iter().map(|(k, (_, t))| (k.clone(), t.clone())).collect());
                let v = Value::Map(m.into_iter().map(|(k, (v, _))| (k, v)).collect());
                (v, ty)
            })
        })
    }

    proptest! {
        #[test]
        fn both_encodings_round_trip((v, ty) in arb_value()) {
            let mp = encode_msgpack(&v, &ty).unwrap();
            prop_assert_eq!(decode_msgpack(&mp, &ty).unwrap(), v.clone());
            let js = encode_json(&v, &ty).unwrap();
            prop_assert_eq!(decode_json(&js, &ty).unwrap(), v);
        }

        #[test]
        fn json_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_json(&bytes, &Type::Dynamic);
            let _ = decode_msgpack(&bytes, &Type::Dynamic);
        }
    }
}
