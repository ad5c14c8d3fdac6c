//! Registry-style documentation for the provider, generated from what
//! Terraform itself reports (`terraform providers schema -json`) plus the
//! examples under `examples/`. Descriptions come only from the schema, so
//! the docs cannot drift from the code; that includes each attribute's
//! validators ("Must be one of: ...", "Conflicts with ..."), which tfplugin6
//! states in the description it sends. `--check` fails when the committed
//! files are stale.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod modules;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors generating or checking the docs.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The schema JSON could not be read.
    #[error("reading provider schema JSON: {0}")]
    Schema(#[from] serde_json::Error),
    /// The provider is not in the schema document.
    #[error(
        "provider {0:?} is not in the schema document (was the dev_overrides config in effect?)"
    )]
    MissingProvider(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `terraform providers schema -json`, the parts we use.
#[derive(Debug, Deserialize)]
pub struct SchemaDoc {
    /// Schemas by provider address.
    pub provider_schemas: BTreeMap<String, ProviderSchemas>,
}

/// One provider's schemas.
#[derive(Debug, Deserialize)]
pub struct ProviderSchemas {
    /// The provider block.
    pub provider: TypeSchema,
    /// Managed resource types.
    #[serde(default)]
    pub resource_schemas: BTreeMap<String, TypeSchema>,
    /// Data source types.
    #[serde(default)]
    pub data_source_schemas: BTreeMap<String, TypeSchema>,
}

/// A versioned block.
#[derive(Debug, Deserialize)]
pub struct TypeSchema {
    /// The top-level block.
    pub block: BlockDoc,
}

/// A block as Terraform reports it.
#[derive(Debug, Default, Deserialize)]
pub struct BlockDoc {
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrDoc>,
    /// Nested block types.
    #[serde(default)]
    pub block_types: BTreeMap<String, NestedBlockDoc>,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// An attribute as Terraform reports it.
#[derive(Debug, Default, Deserialize)]
pub struct AttrDoc {
    /// cty type JSON; absent for nested attributes.
    #[serde(default, rename = "type")]
    pub ty: Option<serde_json::Value>,
    /// Nested attributes.
    #[serde(default)]
    pub nested_type: Option<NestedTypeDoc>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Required.
    #[serde(default)]
    pub required: bool,
    /// Optional.
    #[serde(default)]
    pub optional: bool,
    /// Computed.
    #[serde(default)]
    pub computed: bool,
    /// Sensitive.
    #[serde(default)]
    pub sensitive: bool,
    /// Deprecated.
    #[serde(default)]
    pub deprecated: bool,
}

/// Nested attributes.
#[derive(Debug, Default, Deserialize)]
pub struct NestedTypeDoc {
    /// Inner attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrDoc>,
    /// single, list, set or map.
    #[serde(default)]
    pub nesting_mode: String,
}

/// A nested block type.
#[derive(Debug, Deserialize)]
pub struct NestedBlockDoc {
    /// single, list, set, map or group.
    pub nesting_mode: String,
    /// Its content.
    pub block: BlockDoc,
    /// Minimum count.
    #[serde(default)]
    pub min_items: u64,
    /// Maximum count.
    #[serde(default)]
    pub max_items: u64,
}

/// Which kind of page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A managed resource.
    Resource,
    /// A data source.
    DataSource,
}

/// Renders every page: relative path → content.
pub fn render_all(
    doc: &SchemaDoc,
    provider: &str,
    examples: &Path,
) -> Result<BTreeMap<PathBuf, String>, DocError> {
    let p = doc
        .provider_schemas
        .iter()
        .find(|(addr, _)| addr.as_str() == provider || addr.ends_with(&format!("/{provider}")))
        .map(|(_, s)| s)
        .ok_or_else(|| DocError::MissingProvider(provider.to_string()))?;
    let name = provider.rsplit('/').next().unwrap_or(provider);
    let mut out = BTreeMap::new();
    out.insert(
        PathBuf::from("index.md"),
        render_index(name, &p.provider.block, examples),
    );
    for (ty, s) in &p.resource_schemas {
        out.insert(
            PathBuf::from("resources").join(format!("{}.md", short_name(ty))),
            render_type(ty, Kind::Resource, &s.block, examples),
        );
    }
    for (ty, s) in &p.data_source_schemas {
        out.insert(
            PathBuf::from("data-sources").join(format!("{}.md", short_name(ty))),
            render_type(ty, Kind::DataSource, &s.block, examples),
        );
    }
    Ok(out)
}

/// `tandem_s3_bucket` → `s3_bucket`, as the registry names pages.
pub fn short_name(ty: &str) -> &str {
    ty.split_once('_').map(|(_, rest)| rest).unwrap_or(ty)
}

fn read_opt(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end().to_string())
}

fn front_matter(title: &str, description: &str) -> String {
    let first = description.lines().next().unwrap_or("").trim();
    format!("---\npage_title: \"{title}\"\nsubcategory: \"\"\ndescription: |-\n  {first}\n---\n\n")
}

fn render_index(name: &str, block: &BlockDoc, examples: &Path) -> String {
    let mut s = front_matter(&format!("{name} Provider"), &block.description);
    let _ = writeln!(s, "# {name} Provider\n\n{}\n", block.description.trim());
    if let Some(ex) = read_opt(&examples.join("provider/provider.tf")) {
        let _ = writeln!(s, "## Example Usage\n\n```terraform\n{ex}\n```\n");
    }
    s.push_str(&schema_section(block));
    s
}

fn render_type(ty: &str, kind: Kind, block: &BlockDoc, examples: &Path) -> String {
    let (label, dir, file) = match kind {
        Kind::Resource => ("Resource", "resources", "resource.tf"),
        Kind::DataSource => ("Data Source", "data-sources", "data-source.tf"),
    };
    let mut s = front_matter(
        &format!("{ty} {label} - terraform-provider-tandem"),
        &block.description,
    );
    let _ = writeln!(s, "# {ty} ({label})\n\n{}\n", block.description.trim());
    if let Some(ex) = read_opt(&examples.join(dir).join(ty).join(file)) {
        let _ = writeln!(s, "## Example Usage\n\n```terraform\n{ex}\n```\n");
    }
    s.push_str(&schema_section(block));
    if kind == Kind::Resource {
        if let Some(imp) = read_opt(&examples.join(dir).join(ty).join("import.sh")) {
            let _ = writeln!(s, "\n## Import\n\nImport is supported using the following syntax:\n\n```shell\n{imp}\n```");
        }
    }
    s
}

fn schema_section(block: &BlockDoc) -> String {
    let mut s = String::from("<!-- schema generated by tandem-docs; edit descriptions in the provider code -->\n## Schema\n");
    let mut nested = Vec::new();
    render_section(
        &mut s,
        &block.attributes,
        Some(&block.block_types),
        "",
        &mut nested,
    );
    // Nested blocks and attributes are documented after the top level, each
    // under an anchor the parent links to, as registry readers expect.
    let mut i = 0;
    while i < nested.len() {
        let p = nested[i].clone();
        let _ = write!(
            s,
            "\n<a id=\"{}\"></a>\n### Nested Schema for `{}`\n",
            p.anchor, p.path
        );
        let mut more = Vec::new();
        render_section(&mut s, p.attributes, p.blocks, &p.path, &mut more);
        nested.extend(more);
        i += 1;
    }
    s
}

/// A nested block or nested attribute object still to be documented.
#[derive(Clone)]
struct Pending<'a> {
    anchor: String,
    path: String,
    attributes: &'a BTreeMap<String, AttrDoc>,
    blocks: Option<&'a BTreeMap<String, NestedBlockDoc>>,
}

fn render_section<'a>(
    s: &mut String,
    attributes: &'a BTreeMap<String, AttrDoc>,
    blocks: Option<&'a BTreeMap<String, NestedBlockDoc>>,
    prefix: &str,
    nested: &mut Vec<Pending<'a>>,
) {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let mut required = Vec::new();
    let mut optional = Vec::new();
    let mut readonly = Vec::new();
    for (name, a) in attributes {
        let path = join(name);
        let ty = match (&a.ty, &a.nested_type) {
            (_, Some(n)) => {
                let anchor = format!("nestedatt--{}", path.replace('.', "--"));
                let word = mode_word(&n.nesting_mode);
                nested.push(Pending {
                    anchor: anchor.clone(),
                    path: path.clone(),
                    attributes: &n.attributes,
                    blocks: None,
                });
                format!("Attributes {word}, see [below for nested schema](#{anchor})")
            }
            (Some(t), None) => type_string(t),
            (None, None) => "Dynamic".into(),
        };
        let mut line = format!(
            "- `{name}` ({ty}{}",
            if a.sensitive { ", Sensitive" } else { "" }
        );
        if a.deprecated {
            line.push_str(", Deprecated");
        }
        line.push(')');
        let desc = a.description.trim();
        if !desc.is_empty() {
            let _ = write!(line, " {}", desc.replace('\n', " "));
        }
        if a.required {
            required.push(line);
        } else if a.optional {
            optional.push(line);
        } else {
            readonly.push(line);
        }
    }
    for (name, b) in blocks.into_iter().flatten() {
        let path = join(name);
        let anchor = format!("nestedblock--{}", path.replace('.', "--"));
        let mut limits = String::new();
        if b.min_items > 0 {
            let _ = write!(limits, ", Min: {}", b.min_items);
        }
        if b.max_items > 0 {
            let _ = write!(limits, ", Max: {}", b.max_items);
        }
        let line = format!(
            "- `{name}` (Block {}{limits}) {} (see [below for nested schema](#{anchor}))",
            mode_word(&b.nesting_mode),
            b.block.description.trim().replace('\n', " ")
        );
        if b.min_items > 0 {
            required.push(line);
        } else {
            optional.push(line);
        }
        nested.push(Pending {
            anchor,
            path,
            attributes: &b.block.attributes,
            blocks: Some(&b.block.block_types),
        });
    }
    for (title, lines) in [
        ("Required", required),
        ("Optional", optional),
        ("Read-Only", readonly),
    ] {
        if !lines.is_empty() {
            let _ = write!(s, "\n### {title}\n\n{}\n", lines.join("\n"));
        }
    }
}

fn mode_word(mode: &str) -> &'static str {
    match mode {
        "list" => "List",
        "set" => "Set",
        "map" => "Map",
        _ => "Single",
    }
}

/// Renders a cty type JSON as the registry does: `String`, `List of String`, ...
pub fn type_string(t: &serde_json::Value) -> String {
    match t {
        serde_json::Value::String(s) => match s.as_str() {
            "string" => "String".into(),
            "number" => "Number".into(),
            "bool" => "Boolean".into(),
            _ => "Dynamic".into(),
        },
        serde_json::Value::Array(parts) => {
            let kind = parts.first().and_then(|k| k.as_str()).unwrap_or("");
            let inner = parts.get(1);
            match (kind, inner) {
                ("list", Some(i)) => format!("List of {}", type_string(i)),
                ("set", Some(i)) => format!("Set of {}", type_string(i)),
                ("map", Some(i)) => format!("Map of {}", type_string(i)),
                ("object", _) => "Object".into(),
                ("tuple", _) => "Tuple".into(),
                _ => "Dynamic".into(),
            }
        }
        _ => "Dynamic".into(),
    }
}

/// Writes the pages under `out`, or with `check` compares instead and
/// returns the paths that differ (missing, changed or left over).
pub fn write_or_check(
    pages: &BTreeMap<PathBuf, String>,
    out: &Path,
    check: bool,
) -> Result<Vec<PathBuf>, DocError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DocError::Io { path, source }
    };
    let mut stale = Vec::new();
    for (rel, content) in pages {
        let path = out.join(rel);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() != Some(content.as_str()) {
            stale.push(rel.clone());
            if !check {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io(dir))?;
                }
                std::fs::write(&path, content).map_err(io(&path))?;
            }
        }
    }
    // Pages for types that no longer exist are stale too.
    for sub in ["resources", "data-sources"] {
        let dir = out.join(sub);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = PathBuf::from(sub).join(e.file_name());
            if rel.extension().is_some_and(|x| x == "md") && !pages.contains_key(&rel) {
                stale.push(rel.clone());
                if !check {
                    std::fs::remove_file(e.path()).map_err(io(&e.path()))?;
                }
            }
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> SchemaDoc {
        serde_json::from_value(serde_json::json!({
            "format_version": "1.0",
            "provider_schemas": {
                "registry.terraform.io/tandem/tandem": {
                    "provider": {"version": 0, "block": {"description": "The provider.", "attributes": {
                        "region": {"type": "string", "description": "Default region.", "optional": true}
                    }}},
                    "resource_schemas": {
                        "tandem_thing": {"version": 0, "block": {
                            "description": "A thing.",
                            "attributes": {
                                "name": {"type": "string", "description": "Name.", "required": true},
                                "tags": {"type": ["map", "string"], "description": "Tags.", "optional": true},
                                "secret": {"type": "string", "description": "Secret.", "optional": true, "sensitive": true},
                                "id": {"type": "string", "description": "ID.", "computed": true}
                            },
                            "block_types": {
                                "primary": {"nesting_mode": "single", "block": {"description": "Primary.", "attributes": {
                                    "records": {"type": ["list", "string"], "description": "Values.", "optional": true}
                                }}}
                            }
                        }}
                    },
                    "data_source_schemas": {}
                }
            }
        }))
        .unwrap()
    }

    #[test]
    fn renders_sections_types_and_nested_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let ex = dir.path().join("resources/tandem_thing");
        std::fs::create_dir_all(&ex).unwrap();
        std::fs::write(
            ex.join("resource.tf"),
            "resource \"tandem_thing\" \"x\" {}\n",
        )
        .unwrap();
        std::fs::write(ex.join("import.sh"), "terraform import tandem_thing.x id\n").unwrap();
        let pages = render_all(&doc(), "tandem/tandem", dir.path()).unwrap();
        let page = &pages[&PathBuf::from("resources/thing.md")];
        assert!(page.contains("# tandem_thing (Resource)"));
        assert!(page.contains("### Required\n\n- `name` (String) Name."));
        assert!(page.contains("- `tags` (Map of String) Tags."));
        assert!(page.contains("- `secret` (String, Sensitive) Secret."));
        assert!(page.contains("### Read-Only\n\n- `id` (String) ID."));
        assert!(
            page.contains("<a id=\"nestedblock--primary\"></a>\n### Nested Schema for `primary`")
        );
        assert!(page.contains("- `records` (List of String) Values."));
        assert!(page.contains("```terraform\nresource \"tandem_thing\" \"x\" {}\n```"));
        assert!(page.contains("terraform import tandem_thing.x id"));
        assert!(pages.contains_key(&PathBuf::from("index.md")));
    }

    #[test]
    fn validator_rules_in_descriptions_reach_the_page() {
        // tfplugin6 appends each validator's sentence to the description it
        // sends, so the rules come with the schema, as descriptions do.
        let doc: SchemaDoc = serde_json::from_value(serde_json::json!({
            "provider_schemas": {"tandem/tandem": {
                "provider": {"block": {"description": "P."}},
                "resource_schemas": {"tandem_thing": {"block": {
                    "description": "A thing.",
                    "attributes": {"port": {"type": "number", "optional": true,
                        "description": "Port. Must be a whole number from 1 to 65535."}},
                    "block_types": {"translation": {"nesting_mode": "single", "block": {
                        "description": "Owner override. Requires `account`.",
                        "attributes": {"owner": {"type": "string", "required": true,
                            "description": "Owner. Must be one of: `Destination`."}}}}}
                }}}
            }}
        }))
        .unwrap();
        let pages = render_all(&doc, "tandem/tandem", Path::new("/nonexistent")).unwrap();
        let page = &pages[&PathBuf::from("resources/thing.md")];
        assert!(page.contains("- `port` (Number) Port. Must be a whole number from 1 to 65535."));
        assert!(page.contains("(Block Single) Owner override. Requires `account`."));
        assert!(page.contains("- `owner` (String) Owner. Must be one of: `Destination`."));
    }

    #[test]
    fn check_reports_stale_and_leftover_pages_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let pages = render_all(&doc(), "tandem/tandem", dir.path()).unwrap();
        let out = dir.path().join("docs");
        assert_eq!(write_or_check(&pages, &out, true).unwrap().len(), 2);
        assert!(!out.exists());
        write_or_check(&pages, &out, false).unwrap();
        assert!(write_or_check(&pages, &out, true).unwrap().is_empty());
        std::fs::write(out.join("resources/gone.md"), "old").unwrap();
        assert_eq!(
            write_or_check(&pages, &out, true).unwrap(),
            vec![PathBuf::from("resources/gone.md")]
        );
    }

    #[test]
    fn missing_provider_is_a_clear_error() {
        let err = render_all(&doc(), "other/x", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("other/x"));
    }
}
