//! Provider default tags merged under a resource's own tags, as users of
//! terraform-provider-aws expect (`tags` wins; `tags_all` is the result).

use std::collections::BTreeMap;

use tfplugin6::{Attribute, Ctx, Plan, Type, Value};

use super::Aws;

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

/// The `tags` argument shared by taggable resources.
pub(crate) fn tags_attribute(what: &str) -> Attribute {
    Attribute::optional(
        "tags",
        Type::map(Type::String),
        &format!(
            "Tags to assign to the {what}. Merged over the provider's `default_tags`; on a key present in both, \
             this value wins."
        ),
    )
}

/// The computed `tags_all` attribute shared by taggable resources.
pub(crate) fn tags_all_attribute(what: &str) -> Attribute {
    Attribute::computed(
        "tags_all",
        Type::map(Type::String),
        &format!("All tags of the {what}: the provider's `default_tags` merged with `tags`."),
    )
}

/// Plans `tags_all` from the configured `tags` and the provider's default
/// tags, so a change to either shows in the plan.
pub(crate) fn plan_tags_all(ctx: &Ctx<Aws>, plan: &mut Plan) {
    let own = plan.config.get("tags");
    let all = match ctx.meta_opt() {
        Some(aws) if own.is_wholly_known() => {
            to_value(&merge(aws.default_tags(), &from_value(own)))
        }
        _ => Value::Unknown,
    };
    plan.planned.set("tags_all", all);
}

/// Splits tags read from AWS into `tags` and `tags_all`: a default tag with
/// its default value belongs to `tags_all` only, unless the prior state had
/// it in `tags` (the user set it explicitly).
pub(crate) fn tags_state(
    ctx: &Ctx<Aws>,
    prior_tags: &Value,
    actual: &std::collections::BTreeMap<String, String>,
) -> (Value, Value) {
    let prior = from_value(prior_tags);
    let defaults = ctx
        .meta_opt()
        .map(|a| a.default_tags().clone())
        .unwrap_or_default();
    let own: std::collections::BTreeMap<String, String> = actual
        .iter()
        .filter(|(k, v)| prior.contains_key(*k) || defaults.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // `tags = {}` in configuration must read back as `{}`, not null.
    let own_value = match prior_tags.as_map() {
        Some(m) if m.is_empty() && own.is_empty() => prior_tags.clone(),
        _ => to_value(&own),
    };
    (own_value, to_value(actual))
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
