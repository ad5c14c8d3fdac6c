//! Docs that run: every fenced ```hcl / ```terraform block of `docs/**/*.md`
//! and `modules/*/README.md` is checked with real Terraform and the
//! provider as built (dev_overrides).
//!
//! - A whole configuration must pass `terraform fmt -check`, `init` and
//!   `terraform validate`, in a directory beside a copy of `modules/`, so a
//!   module `source = "../../modules/<name>"` resolves as in the repo's
//!   examples.
//! - A block marked partial (`<!-- partial -->` on the line before the
//!   fence, or the info string ```hcl partial) is a fragment (a CLI config,
//!   one argument) and must pass `terraform fmt -check` only, which parses
//!   it.
//! - Resources of providers that cannot be installed offline
//!   ([`OFFLINE_STAND_INS`]: `kubernetes_manifest`) are validated as
//!   `terraform_data`, so what the snippet feeds them is still checked.
//! - [`KNOWN`] lists blocks this test cannot check yet, with the reason;
//!   a listed block that starts passing fails the test, so the list
//!   shrinks.

use std::path::{Path, PathBuf};

use tandem_acceptance::{copy_dir, repo_root, skip_unless_acc, TfDir};

/// Blocks not checked yet: (file, 1-based block number in it, why).
const KNOWN: &[(&str, usize, &str)] = &[];

/// Resources of providers this offline test cannot install, validated as
/// `terraform_data` with their one argument as its `input`: what the
/// snippet feeds them (for_each keys, decoded values) is still checked.
/// (resource type, its argument).
const OFFLINE_STAND_INS: &[(&str, &str)] = &[("kubernetes_manifest", "manifest")];

/// One fenced block.
#[derive(Debug)]
struct Snippet {
    /// Repository-relative path of the Markdown file.
    file: String,
    /// 1-based number of the block among the file's hcl/terraform blocks.
    index: usize,
    /// 1-based line of the opening fence.
    line: usize,
    partial: bool,
    body: String,
}

impl Snippet {
    fn name(&self) -> String {
        format!("{} block {} (line {})", self.file, self.index, self.line)
    }
}

/// The hcl/terraform blocks of one Markdown file.
fn snippets(root: &Path, path: &Path) -> Vec<Snippet> {
    let file = path
        .strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let info = lines[i].trim_start().strip_prefix("```").map(str::trim);
        let mut words = info.unwrap_or("").split_whitespace();
        let lang = words.next();
        if info.is_some() && matches!(lang, Some("hcl" | "terraform")) {
            let partial =
                words.any(|w| w == "partial") || i > 0 && lines[i - 1].trim() == "<!-- partial -->";
            let start = i;
            let mut body = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim_start() != "```" {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            out.push(Snippet {
                index: out.len() + 1,
                file: file.clone(),
                line: start + 1,
                partial,
                body,
            });
        } else if info.is_some() {
            // Skip any other fenced block whole, so a ``` inside it is not
            // taken for an opening fence.
            i += 1;
            while i < lines.len() && lines[i].trim_start() != "```" {
                i += 1;
            }
        }
        i += 1;
    }
    out
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            markdown_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

fn all_snippets() -> Vec<Snippet> {
    let root = repo_root();
    let mut files = Vec::new();
    markdown_files(&root.join("docs"), &mut files);
    for e in std::fs::read_dir(root.join("modules")).unwrap().flatten() {
        let readme = e.path().join("README.md");
        if readme.exists() {
            files.push(readme);
        }
    }
    files.sort();
    files.iter().flat_map(|f| snippets(&root, f)).collect()
}

/// What is wrong with one snippet, or None when it passes.
fn check(s: &Snippet) -> Option<String> {
    let dir = TfDir::new();
    let work = dir.path().join("examples/snippet");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("main.tf"), &s.body).unwrap();
    let chdir = "-chdir=examples/snippet";
    let fmt = dir.run(&[chdir, "fmt", "-check", "-diff", "-no-color"]);
    if fmt.code != 0 {
        return Some(format!("terraform fmt -check:\n{}", fmt.all()));
    }
    if s.partial {
        return None;
    }
    let mut body = s.body.clone();
    for (ty, arg) in OFFLINE_STAND_INS {
        if body.contains(&format!("resource \"{ty}\"")) {
            body = body
                .replace(&format!("resource \"{ty}\""), "resource \"terraform_data\"")
                .replace(&format!(" {arg} "), " input ");
        }
    }
    std::fs::write(work.join("main.tf"), &body).unwrap();
    copy_dir(&repo_root().join("modules"), &dir.path().join("modules"));
    // A snippet may leave out the terraform block; the provider is then
    // tandem/tandem as a reader would declare it.
    if !s.body.contains("required_providers") {
        std::fs::write(
            work.join("_providers.tf"),
            "terraform {\n  required_providers {\n    tandem = { source = \"tandem/tandem\" }\n  }\n}\n",
        )
        .unwrap();
    }
    let init = dir.run(&[chdir, "init", "-backend=false", "-no-color", "-input=false"]);
    if init.code != 0 {
        return Some(format!("terraform init:\n{}", init.all()));
    }
    let validate = dir.run(&[chdir, "validate", "-no-color"]);
    if validate.code != 0 {
        return Some(format!("terraform validate:\n{}", validate.all()));
    }
    None
}

#[test]
fn every_hcl_snippet_in_the_docs_validates() {
    skip_unless_acc!();
    let all = all_snippets();
    assert!(all.len() >= 20, "found only {} snippets", all.len());
    let mut failures = Vec::new();
    for s in &all {
        let known = KNOWN.iter().find(|(f, i, _)| *f == s.file && *i == s.index);
        match (check(s), known) {
            (None, None) | (Some(_), Some(_)) => {}
            (Some(why), None) => failures.push(format!("{}: {why}", s.name())),
            (None, Some(_)) => failures.push(format!(
                "{} passes now: take it off KNOWN in acceptance-tests/tests/doc_snippets.rs",
                s.name()
            )),
        }
    }
    for (f, i, why) in KNOWN {
        assert!(
            all.iter().any(|s| s.file == *f && s.index == *i),
            "KNOWN names {f} block {i}, which no longer exists"
        );
        eprintln!("not checked: {f} block {i}: {why}");
    }
    eprintln!(
        "{} snippets checked ({} partial, fmt only)",
        all.len() - KNOWN.len(),
        all.iter().filter(|s| s.partial).count()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn snippet_extraction_sees_markers_and_skips_other_fences() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("x.md");
    std::fs::write(
        &md,
        "# x\n\n```sh\n```hcl inside sh\n```\n\n<!-- partial -->\n```hcl\na = 1\n```\n\n```terraform\nb = 2\n```\n\n```hcl partial\nc = 3\n```\n",
    )
    .unwrap();
    let got = snippets(dir.path(), &md);
    let summary: Vec<(usize, usize, bool, &str)> = got
        .iter()
        .map(|s| (s.index, s.line, s.partial, s.body.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 8, true, "a = 1\n"),
            (2, 12, false, "b = 2\n"),
            (3, 16, true, "c = 3\n")
        ]
    );
}
