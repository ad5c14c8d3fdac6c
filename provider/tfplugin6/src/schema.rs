//! Typed schema building. A schema is written once, with a description on
//! every attribute, and serves three purposes: the protocol's schema message,
//! the value type used by the codec, and the default planning rules
//! (computed attributes, defaults, replacement).

use std::collections::BTreeMap;

use crate::proto::tfplugin6 as pb;
use crate::types::Type;
use crate::validate::{described, Validator};
use crate::value::Value;

/// How a nested block or nested attribute repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; absent is null.
    Single,
    /// Zero or more, ordered.
    List,
    /// Zero or more, unordered.
    Set,
    /// Keyed by label.
    Map,
    /// Exactly one, never null (attributes inside take their own defaults).
    Group,
}

/// What an attribute holds: a plain type or nested attributes.
#[derive(Debug, Clone)]
pub enum AttrKind {
    /// A value of a cty type.
    Typed(Type),
    /// Nested attributes (protocol 6's `nested_type`).
    Nested {
        /// The inner attributes.
        attributes: Vec<Attribute>,
        /// How the object repeats (Group is not allowed here).
        nesting: Nesting,
    },
}

/// One attribute of a block.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Its type.
    pub kind: AttrKind,
    /// Markdown description; the registry docs are generated from it.
    pub description: String,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// The provider may set it.
    pub computed: bool,
    /// Redacted in plan output.
    pub sensitive: bool,
    /// Only in configuration, never in state.
    pub write_only: bool,
    /// Deprecation message, if deprecated.
    pub deprecated: Option<String>,
    /// A change to it replaces the resource (planning rule, not sent to core).
    pub force_new: bool,
    /// Value planned when the configuration leaves it null (needs `computed`).
    pub default: Option<Value>,
    /// Rules checked at validate time, stated in the description.
    pub validators: Vec<Validator>,
}

impl Attribute {
    fn new(name: &str, kind: AttrKind, description: &str) -> Attribute {
        Attribute {
            name: name.to_string(),
            kind,
            description: description.to_string(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: None,
            force_new: false,
            default: None,
            validators: Vec::new(),
        }
    }

    /// A required attribute.
    pub fn required(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            required: true,
            ..Attribute::new(name, AttrKind::Typed(ty), description)
        }
    }

    /// An optional attribute that stays null when not set.
    pub fn optional(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            optional: true,
            ..Attribute::new(name, AttrKind::Typed(ty), description)
        }
    }

    /// An attribute only the provider sets.
    pub fn computed(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            computed: true,
            ..Attribute::new(name, AttrKind::Typed(ty), description)
        }
    }

    /// An optional attribute that the provider fills when not set.
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            optional: true,
            computed: true,
            ..Attribute::new(name, AttrKind::Typed(ty), description)
        }
    }

    /// An attribute made of nested attributes.
    pub fn nested(
        name: &str,
        nesting: Nesting,
        attributes: Vec<Attribute>,
        description: &str,
    ) -> Attribute {
        Attribute::new(
            name,
            AttrKind::Nested {
                attributes,
                nesting,
            },
            description,
        )
    }

    /// Marks it required (for nested attributes built with [`Attribute::nested`]).
    pub fn is_required(mut self) -> Attribute {
        self.required = true;
        self.optional = false;
        self
    }

    /// Marks it optional (for nested attributes built with [`Attribute::nested`]).
    pub fn is_optional(mut self) -> Attribute {
        self.optional = true;
        self.required = false;
        self
    }

    /// Redacts it in plans.
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }

    /// Changing it replaces the resource.
    pub fn force_new(mut self) -> Attribute {
        self.force_new = true;
        self
    }

    /// Plans `v` when configuration leaves it null; makes it optional+computed.
    pub fn default(mut self, v: impl Into<Value>) -> Attribute {
        self.default = Some(v.into());
        self.optional = true;
        self.computed = true;
        self.required = false;
        self
    }

    /// Adds a rule checked at validate time (and stated in the docs).
    pub fn validate(mut self, v: Validator) -> Attribute {
        self.validators.push(v);
        self
    }

    /// Marks it deprecated with a message.
    pub fn deprecated(mut self, msg: &str) -> Attribute {
        self.deprecated = Some(msg.to_string());
        self
    }

    /// The cty type of its values.
    pub fn value_type(&self) -> Type {
        match &self.kind {
            AttrKind::Typed(t) => t.clone(),
            AttrKind::Nested {
                attributes,
                nesting,
            } => {
                let obj = Type::Object(
                    attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value_type()))
                        .collect(),
                );
                wrap(obj, *nesting)
            }
        }
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        let (ty, nested) = match &self.kind {
            AttrKind::Typed(t) => (t.to_json_bytes(), None),
            AttrKind::Nested {
                attributes,
                nesting,
            } => (
                Vec::new(),
                Some(pb::schema::Object {
                    attributes: attributes.iter().map(Attribute::to_proto).collect(),
                    nesting: match nesting {
                        Nesting::Single | Nesting::Group => pb::schema::object::NestingMode::Single,
                        Nesting::List => pb::schema::object::NestingMode::List,
                        Nesting::Set => pb::schema::object::NestingMode::Set,
                        Nesting::Map => pb::schema::object::NestingMode::Map,
                    } as i32,
                }),
            ),
        };
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: ty,
            nested_type: nested,
            description: described(&self.description, &self.name, &self.validators),
            required: self.required,
            optional: self.optional,
            computed: self.computed,
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated.is_some(),
            write_only: self.write_only,
            deprecation_message: self.deprecated.clone().unwrap_or_default(),
        }
    }
}

fn wrap(obj: Type, nesting: Nesting) -> Type {
    match nesting {
        Nesting::Single | Nesting::Group => obj,
        Nesting::List => Type::list(obj),
        Nesting::Set => Type::set(obj),
        Nesting::Map => Type::map(obj),
    }
}

/// A nested block type (`primary { ... }`).
#[derive(Debug, Clone)]
pub struct NestedBlock {
    /// Block type name.
    pub name: String,
    /// What the block contains.
    pub block: Block,
    /// How it repeats.
    pub nesting: Nesting,
    /// Minimum count (lists and sets); 1 on a Single block makes it required.
    pub min_items: i64,
    /// Maximum count, 0 for no limit.
    pub max_items: i64,
    /// A change anywhere inside replaces the resource.
    pub force_new: bool,
    /// Rules about the block as a whole (which siblings it needs or
    /// excludes, how many elements), checked at validate time.
    pub validators: Vec<Validator>,
}

impl NestedBlock {
    /// A block that may appear once.
    pub fn single(name: &str, block: Block) -> NestedBlock {
        NestedBlock {
            name: name.into(),
            block,
            nesting: Nesting::Single,
            min_items: 0,
            max_items: 0,
            force_new: false,
            validators: Vec::new(),
        }
    }

    /// A block that may repeat, in order.
    pub fn list(name: &str, block: Block) -> NestedBlock {
        NestedBlock {
            nesting: Nesting::List,
            ..NestedBlock::single(name, block)
        }
    }

    /// A block that may repeat, unordered.
    pub fn set(name: &str, block: Block) -> NestedBlock {
        NestedBlock {
            nesting: Nesting::Set,
            ..NestedBlock::single(name, block)
        }
    }

    /// Sets the minimum count.
    pub fn min(mut self, n: i64) -> NestedBlock {
        self.min_items = n;
        self
    }

    /// Sets the maximum count.
    pub fn max(mut self, n: i64) -> NestedBlock {
        self.max_items = n;
        self
    }

    /// Any change inside replaces the resource.
    pub fn force_new(mut self) -> NestedBlock {
        self.force_new = true;
        self
    }

    /// Adds a rule about the block, checked at validate time (and stated in
    /// the docs).
    pub fn validate(mut self, v: Validator) -> NestedBlock {
        self.validators.push(v);
        self
    }

    /// The cty type of the block's value.
    pub fn value_type(&self) -> Type {
        wrap(self.block.value_type(), self.nesting)
    }

    fn to_proto(&self) -> pb::schema::NestedBlock {
        use pb::schema::nested_block::NestingMode as M;
        let mut block = self.block.to_proto(0);
        block.description = described(&block.description, &self.name, &self.validators);
        pb::schema::NestedBlock {
            type_name: self.name.clone(),
            block: Some(block),
            nesting: match self.nesting {
                Nesting::Single => M::Single,
                Nesting::List => M::List,
                Nesting::Set => M::Set,
                Nesting::Map => M::Map,
                Nesting::Group => M::Group,
            } as i32,
            // Core only accepts min/max on list and set blocks.
            min_items: if matches!(self.nesting, Nesting::List | Nesting::Set) {
                self.min_items
            } else {
                0
            },
            max_items: if matches!(self.nesting, Nesting::List | Nesting::Set) {
                self.max_items
            } else {
                0
            },
        }
    }
}

/// A block: attributes and nested blocks.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Markdown description of the block.
    pub description: String,
    /// Attributes in declaration order (core sorts them for display).
    pub attributes: Vec<Attribute>,
    /// Nested block types.
    pub blocks: Vec<NestedBlock>,
    /// Deprecation message, if deprecated.
    pub deprecated: Option<String>,
}

impl Block {
    /// An empty block with a description.
    pub fn new(description: &str) -> Block {
        Block {
            description: description.into(),
            ..Block::default()
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, a: Attribute) -> Block {
        self.attributes.push(a);
        self
    }

    /// Adds a nested block type.
    pub fn block(mut self, b: NestedBlock) -> Block {
        self.blocks.push(b);
        self
    }

    /// The object type of this block's value.
    pub fn value_type(&self) -> Type {
        let mut m: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value_type()))
            .collect();
        for b in &self.blocks {
            m.insert(b.name.clone(), b.value_type());
        }
        Type::Object(m)
    }

    /// Finds an attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    fn to_proto(&self, version: i64) -> pb::schema::Block {
        pb::schema::Block {
            version,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self.blocks.iter().map(NestedBlock::to_proto).collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated.is_some(),
            deprecation_message: self.deprecated.clone().unwrap_or_default(),
            computed: false,
        }
    }

    /// Every attribute in this block and the blocks below it, with its
    /// name path; used by schema checks in tests.
    pub fn walk(&self, prefix: &str, out: &mut Vec<(String, Attribute)>) {
        for a in &self.attributes {
            let path = if prefix.is_empty() {
                a.name.clone()
            } else {
                format!("{prefix}.{}", a.name)
            };
            if let AttrKind::Nested { attributes, .. } = &a.kind {
                let inner = Block {
                    attributes: attributes.clone(),
                    ..Block::default()
                };
                inner.walk(&path, out);
            }
            out.push((path, a.clone()));
        }
        for b in &self.blocks {
            let path = if prefix.is_empty() {
                b.name.clone()
            } else {
                format!("{prefix}.{}", b.name)
            };
            b.block.walk(&path, out);
        }
    }
}

/// A versioned schema for a provider, resource or data source.
#[derive(Debug, Clone)]
pub struct Schema {
    /// State schema version; bump it and handle upgrades when state changes shape.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A version-0 schema.
    pub fn new(block: Block) -> Schema {
        Schema { version: 0, block }
    }

    /// Sets the version.
    pub fn version(mut self, v: i64) -> Schema {
        self.version = v;
        self
    }

    /// The value type of the whole object.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    /// The protocol message.
    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto(self.version)),
        }
    }

    /// Attributes lacking a description, by path; a test on every schema
    /// keeps the generated docs complete.
    pub fn undocumented(&self) -> Vec<String> {
        let mut all = Vec::new();
        self.block.walk("", &mut all);
        let mut missing: Vec<String> = all
            .into_iter()
            .filter(|(_, a)| a.description.trim().is_empty())
            .map(|(p, _)| p)
            .collect();
        if self.block.description.trim().is_empty() {
            missing.push("(block)".into());
        }
        missing
    }
}

/// Identity attribute of a resource (protocol 6.9+), used by `import`
/// blocks with `identity` and by list resources.
#[derive(Debug, Clone)]
pub struct IdentityAttribute {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Type,
    /// Must be given on import.
    pub required_for_import: bool,
    /// Description.
    pub description: String,
}

/// A resource's identity schema.
#[derive(Debug, Clone)]
pub struct IdentitySchema {
    /// Identity schema version.
    pub version: i64,
    /// Its attributes.
    pub attributes: Vec<IdentityAttribute>,
}

impl IdentitySchema {
    /// A version-0 identity of string attributes, all required for import.
    pub fn strings(attrs: &[(&str, &str)]) -> IdentitySchema {
        IdentitySchema {
            version: 0,
            attributes: attrs
                .iter()
                .map(|(name, description)| IdentityAttribute {
                    name: (*name).to_string(),
                    ty: Type::String,
                    required_for_import: true,
                    description: (*description).to_string(),
                })
                .collect(),
        }
    }

    /// The object type of identity values.
    pub fn value_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.clone(), a.ty.clone()))
                .collect(),
        )
    }

    /// The protocol message.
    pub fn to_proto(&self) -> pb::ResourceIdentitySchema {
        pb::ResourceIdentitySchema {
            version: self.version,
            identity_attributes: self
                .attributes
                .iter()
                .map(|a| pb::resource_identity_schema::IdentityAttribute {
                    name: a.name.clone(),
                    r#type: a.ty.to_json_bytes(),
                    required_for_import: a.required_for_import,
                    optional_for_import: !a.required_for_import,
                    description: a.description.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Schema {
        Schema::new(
            Block::new("A record pair.")
                .attr(Attribute::required("name", Type::String, "DNS name.").force_new())
                .attr(Attribute::optional("ttl", Type::Number, "TTL in seconds.").default(60))
                .attr(Attribute::computed("id", Type::String, "Identifier."))
                .block(NestedBlock::single(
                    "primary",
                    Block::new("Primary target.").attr(Attribute::optional(
                        "records",
                        Type::list(Type::String),
                        "Values.",
                    )),
                )),
        )
    }

    #[test]
    fn value_type_includes_blocks() {
        let t = sample().value_type();
        assert_eq!(
            t,
            Type::object([
                ("name", Type::String),
                ("ttl", Type::Number),
                ("id", Type::String),
                (
                    "primary",
                    Type::object([("records", Type::list(Type::String))])
                ),
            ])
        );
    }

    #[test]
    fn default_implies_optional_computed() {
        let s = sample();
        let ttl = s.block.attribute("ttl").unwrap();
        assert!(ttl.optional && ttl.computed && !ttl.required);
    }

    #[test]
    fn proto_carries_markdown_descriptions() {
        let p = sample().to_proto();
        let b = p.block.unwrap();
        assert!(b.attributes.iter().all(|a| !a.description.is_empty()));
        assert_eq!(b.block_types[0].type_name, "primary");
        assert_eq!(b.block_types[0].max_items, 0);
    }

    #[test]
    fn undocumented_attributes_are_found() {
        let s = Schema::new(Block::new("x").attr(Attribute::optional("a", Type::String, " ")));
        assert_eq!(s.undocumented(), vec!["a".to_string()]);
        assert!(sample().undocumented().is_empty());
    }
}
