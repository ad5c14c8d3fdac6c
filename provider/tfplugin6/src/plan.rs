//! Default planning rules, applied before a resource's own `modify_plan`:
//! computed attributes, defaults, and replacement on `force_new` changes.
//! These are the rules Terraform users expect from any provider, so every
//! resource gets them without writing them again.

use crate::diag::AttrPath;
use crate::schema::{AttrKind, Attribute, Block, Nesting};
use crate::value::Value;

/// Plans a block: `prior` is null on create; `proposed` is core's merge of
/// config and prior state. Returns the planned value and the paths that
/// force replacement.
pub fn default_plan(
    block: &Block,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> (Value, Vec<AttrPath>) {
    let planned = plan_block(block, prior, proposed, config);
    let mut replace = Vec::new();
    if !prior.is_null() {
        collect_replace(block, prior, &planned, &AttrPath::default(), &mut replace);
    }
    if replace.is_empty() {
        (planned, replace)
    } else {
        // A replacement is a new object: every computed value it had will be
        // recomputed, so plan it exactly as a create.
        (plan_block(block, &Value::Null, proposed, config), replace)
    }
}

fn plan_block(block: &Block, prior: &Value, proposed: &Value, config: &Value) -> Value {
    if proposed.is_null() || proposed.is_unknown() {
        return proposed.clone();
    }
    let mut out = proposed.clone();
    for a in &block.attributes {
        let v = plan_attr(
            a,
            prior.get(&a.name),
            proposed.get(&a.name),
            config.get(&a.name),
            prior.is_null(),
        );
        out.set(&a.name, v);
    }
    for b in &block.blocks {
        let p = proposed.get(&b.name);
        let v = match (b.nesting, p) {
            (_, Value::Null | Value::Unknown) => p.clone(),
            (Nesting::Single | Nesting::Group, _) => {
                plan_block(&b.block, prior.get(&b.name), p, config.get(&b.name))
            }
            (Nesting::List, Value::List(items)) => Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let pr = prior
                            .get(&b.name)
                            .as_list()
                            .and_then(|l| l.get(i))
                            .unwrap_or(&Value::Null);
                        let c = config
                            .get(&b.name)
                            .as_list()
                            .and_then(|l| l.get(i))
                            .unwrap_or(&Value::Null);
                        plan_block(&b.block, pr, e, c)
                    })
                    .collect(),
            ),
            (Nesting::Set, Value::List(items)) => {
                // Set elements have no index to pair them with their prior
                // selves, so pair by the attributes the user controls; an
                // unpaired element is new and its computed values unknown.
                let priors = prior.get(&b.name).as_list().unwrap_or(&[]);
                Value::List(
                    items
                        .iter()
                        .map(|e| {
                            let pr = priors
                                .iter()
                                .find(|p| same_config(&b.block, p, e))
                                .unwrap_or(&Value::Null);
                            plan_block(&b.block, pr, e, e)
                        })
                        .collect(),
                )
            }
            // Map blocks are rare; core's proposal already carries prior
            // values there.
            _ => p.clone(),
        };
        out.set(&b.name, v);
    }
    out
}

/// True when two block values agree on every attribute that configuration
/// sets (required or optional and not computed), recursively.
fn same_config(block: &Block, a: &Value, b: &Value) -> bool {
    block
        .attributes
        .iter()
        .filter(|at| !at.computed)
        .all(|at| a.get(&at.name) == b.get(&at.name))
        && block
            .blocks
            .iter()
            .all(|nb| match (a.get(&nb.name), b.get(&nb.name)) {
                (Value::List(x), Value::List(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_config(&nb.block, x, y))
                }
                (x, y) if matches!(nb.nesting, Nesting::Single | Nesting::Group) => {
                    same_config(&nb.block, x, y)
                }
                (x, y) => x == y,
            })
}

fn plan_attr(
    a: &Attribute,
    prior: &Value,
    proposed: &Value,
    config: &Value,
    creating: bool,
) -> Value {
    if a.computed && config.is_null() {
        if let Some(d) = &a.default {
            return d.clone();
        }
        if creating {
            return Value::Unknown;
        }
        // Core's proposal already holds the prior value here, except for
        // set elements we paired ourselves; prior is right in both cases.
        return prior.clone();
    }
    match (&a.kind, proposed) {
        (
            AttrKind::Nested {
                attributes,
                nesting: Nesting::Single | Nesting::Group,
            },
            Value::Map(_),
        ) => {
            let inner = Block {
                attributes: attributes.clone(),
                ..Block::default()
            };
            plan_block(&inner, prior, proposed, config)
        }
        _ => proposed.clone(),
    }
}

fn collect_replace(
    block: &Block,
    prior: &Value,
    planned: &Value,
    base: &AttrPath,
    out: &mut Vec<AttrPath>,
) {
    for a in &block.attributes {
        if a.force_new && prior.get(&a.name) != planned.get(&a.name) {
            out.push(base.clone().attr(&a.name));
        }
    }
    for b in &block.blocks {
        let path = base.clone().attr(&b.name);
        if b.force_new {
            if prior.get(&b.name) != planned.get(&b.name) {
                out.push(path);
            }
        } else if matches!(b.nesting, Nesting::Single | Nesting::Group) {
            collect_replace(
                &b.block,
                prior.get(&b.name),
                planned.get(&b.name),
                &path,
                out,
            );
        } else if b.nesting == Nesting::List {
            if let (Some(pl), Some(nl)) =
                (prior.get(&b.name).as_list(), planned.get(&b.name).as_list())
            {
                for (i, (p, n)) in pl.iter().zip(nl).enumerate() {
                    collect_replace(&b.block, p, n, &path.clone().index(i), out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};
    use crate::types::Type;

    fn block() -> Block {
        Block::new("t")
            .attr(Attribute::required("name", Type::String, "n").force_new())
            .attr(Attribute::optional("comment", Type::String, "c"))
            .attr(Attribute::optional("ttl", Type::Number, "t").default(60))
            .attr(Attribute::computed("id", Type::String, "i"))
            .attr(Attribute::optional_computed("region", Type::String, "r"))
            .block(NestedBlock::single(
                "primary",
                Block::new("p")
                    .attr(Attribute::optional("set_identifier", Type::String, "s").force_new())
                    .attr(Attribute::computed("fqdn", Type::String, "f")),
            ))
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    #[test]
    fn create_marks_computed_unknown_and_applies_defaults() {
        let config = obj(&[
            ("name", "a".into()),
            ("primary", obj(&[("set_identifier", "x".into())])),
        ]);
        let (planned, replace) = default_plan(&block(), &Value::Null, &config, &config);
        assert!(replace.is_empty());
        assert_eq!(planned.get("id"), &Value::Unknown);
        assert_eq!(planned.get("region"), &Value::Unknown);
        assert_eq!(planned.get("ttl"), &Value::int(60));
        assert_eq!(planned.get("primary").get("fqdn"), &Value::Unknown);
        assert_eq!(planned.get("name"), &Value::string("a"));
    }

    #[test]
    fn update_keeps_computed_values() {
        let prior = obj(&[
            ("name", "a".into()),
            ("comment", "old".into()),
            ("ttl", Value::int(60)),
            ("id", "Z1".into()),
            ("region", "eu-west-1".into()),
            (
                "primary",
                obj(&[("set_identifier", "x".into()), ("fqdn", "a.example".into())]),
            ),
        ]);
        let mut proposed = prior.clone();
        proposed.set("comment", "new".into());
        let config = obj(&[
            ("name", "a".into()),
            ("comment", "new".into()),
            ("primary", obj(&[("set_identifier", "x".into())])),
        ]);
        let (planned, replace) = default_plan(&block(), &prior, &proposed, &config);
        assert!(replace.is_empty());
        assert_eq!(planned.get("id"), &Value::string("Z1"));
        assert_eq!(planned.get("region"), &Value::string("eu-west-1"));
        assert_eq!(
            planned.get("primary").get("fqdn"),
            &Value::string("a.example")
        );
        assert_eq!(planned.get("comment"), &Value::string("new"));
    }

    #[test]
    fn force_new_change_in_nested_block_replaces_and_recomputes() {
        let prior = obj(&[
            ("name", "a".into()),
            ("ttl", Value::int(60)),
            ("id", "Z1".into()),
            ("region", "eu-west-1".into()),
            (
                "primary",
                obj(&[("set_identifier", "x".into()), ("fqdn", "a.example".into())]),
            ),
        ]);
        let mut proposed = prior.clone();
        proposed.set(
            "primary",
            obj(&[("set_identifier", "y".into()), ("fqdn", "a.example".into())]),
        );
        let config = obj(&[
            ("name", "a".into()),
            ("primary", obj(&[("set_identifier", "y".into())])),
        ]);
        let (planned, replace) = default_plan(&block(), &prior, &proposed, &config);
        assert_eq!(
            replace,
            vec![AttrPath::root("primary").attr("set_identifier")]
        );
        assert_eq!(planned.get("id"), &Value::Unknown);
        assert_eq!(planned.get("primary").get("fqdn"), &Value::Unknown);
    }

    #[test]
    fn set_blocks_keep_computed_values_of_unchanged_elements() {
        let b = Block::new("t").block(NestedBlock::set(
            "rule",
            Block::new("r")
                .attr(Attribute::required("id", Type::String, "i"))
                .attr(Attribute::computed("arn", Type::String, "a")),
        ));
        let prior = obj(&[(
            "rule",
            Value::List(vec![obj(&[("id", "a".into()), ("arn", "arn:a".into())])]),
        )]);
        let config = obj(&[(
            "rule",
            Value::List(vec![
                obj(&[("id", "a".into()), ("arn", Value::Null)]),
                obj(&[("id", "b".into()), ("arn", Value::Null)]),
            ]),
        )]);
        let (planned, _) = default_plan(&b, &prior, &config, &config);
        let rules = planned.get("rule").as_list().unwrap();
        assert_eq!(rules[0].get("arn"), &Value::string("arn:a"));
        assert_eq!(rules[1].get("arn"), &Value::Unknown);
    }

    #[test]
    fn default_removed_from_config_returns_to_default() {
        let prior = obj(&[
            ("name", "a".into()),
            ("ttl", Value::int(300)),
            ("id", "Z1".into()),
        ]);
        let config = obj(&[("name", "a".into())]);
        let (planned, _) = default_plan(&block(), &prior, &prior, &config);
        assert_eq!(planned.get("ttl"), &Value::int(60));
    }
}
