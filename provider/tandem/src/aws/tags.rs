//! Provider default tags merged under a resource's own tags, as users of
//! terraform-provider-aws expect (`tags` wins; `tags_all` is the result).

use std::collections::BTreeMap;

use tfplugin6::Value;

/// `default` overlaid by `own`.
pub fn merge(
    default: &BTreeMap<String, String>,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = default.clone();
    all.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// Reads a `map(string)` value; null or unknown reads as empty.
pub fn from_value(v: &Value) -> BTreeMap<String, String> {
    v.as_map()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Builds a `map(string)` value; empty maps become null so an unset
/// `tags` argument never shows a diff against `{}`.
pub fn to_value(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::string(v)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_tags_win() {
        let d = BTreeMap::from([
            ("env".to_string(), "prod".to_string()),
            ("team".to_string(), "a".to_string()),
        ]);
        let o = BTreeMap::from([("env".to_string(), "dev".to_string())]);
        let m = merge(&d, &o);
        assert_eq!(m["env"], "dev");
        assert_eq!(m["team"], "a");
    }

    #[test]
    fn empty_maps_are_null() {
        assert!(to_value(&BTreeMap::new()).is_null());
        assert!(from_value(&Value::Unknown).is_empty());
    }
}
