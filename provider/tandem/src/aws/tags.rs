//! Provider default tags merged under a resource's own tags, as users of
//! terraform-provider-aws expect (`tags` wins; `tags_all` is the result).

use std::collections::BTreeMap;

use tfplugin6::{Attribute, Ctx, Field, Plan, Type, Validator, Value};

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

/// AWS reserves tag keys starting with this for its own tags.
const RESERVED_TAG_PREFIX: &str = "aws:";

fn tag_key(k: &str) -> Result<(), String> {
    if k.starts_with(RESERVED_TAG_PREFIX) {
        Err(format!(
            "keys starting with {RESERVED_TAG_PREFIX:?} are reserved by AWS"
        ))
    } else {
        Ok(())
    }
}

/// The rule on tag keys, for every tags argument (resources' and the
/// provider's `default_tags`).
pub(crate) fn tag_keys() -> Validator {
    Validator::keys(Validator::format(
        "a tag key of your own (not starting with `aws:`)",
        tag_key,
    ))
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
    .validate(tag_keys())
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

/// Tags as typed models hold them.
pub(crate) type Tags = BTreeMap<String, String>;

/// Splits tags read from AWS into `tags` and `tags_all`: a default tag with
/// its default value belongs to `tags_all` only, unless the prior state had
/// it in `tags` (the user set it explicitly).
pub(crate) fn split_tags(
    ctx: &Ctx<Aws>,
    prior: &Field<Tags>,
    actual: &Tags,
) -> (Field<Tags>, Field<Tags>) {
    let empty = Tags::new();
    let prior_own = prior.known().unwrap_or(&empty);
    let defaults = ctx
        .meta_opt()
        .map(|a| a.default_tags().clone())
        .unwrap_or_default();
    let own: Tags = actual
        .iter()
        .filter(|(k, v)| prior_own.contains_key(*k) || defaults.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let non_empty = |m: Tags| {
        if m.is_empty() {
            Field::Null
        } else {
            Field::Known(m)
        }
    };
    // `tags = {}` in configuration must read back as `{}`, not null.
    let own = match prior.known() {
        Some(p) if p.is_empty() && own.is_empty() => Field::Known(Tags::new()),
        _ => non_empty(own),
    };
    (own, non_empty(actual.clone()))
}

/// [`split_tags`] for resources that keep their state as a [`Value`].
pub(crate) fn tags_state(ctx: &Ctx<Aws>, prior_tags: &Value, actual: &Tags) -> (Value, Value) {
    let prior = match prior_tags.as_map() {
        Some(_) => Field::Known(from_value(prior_tags)),
        None => Field::Null,
    };
    let (own, all) = split_tags(ctx, &prior, actual);
    let value = |f: Field<Tags>| match f {
        Field::Known(m) if m.is_empty() => Value::Map(Default::default()),
        Field::Known(m) => to_value(&m),
        _ => Value::Null,
    };
    (value(own), value(all))
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
