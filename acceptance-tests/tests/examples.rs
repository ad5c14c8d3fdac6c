//! Every example under `examples/` passes `terraform validate` against the
//! provider as built. Registry-style snippets (`resources/`, `data-sources/`)
//! omit the `required_providers` block, as registry docs do, so the test adds
//! one; they must otherwise be complete configurations.

use std::path::{Path, PathBuf};

use tandem_acceptance::{repo_root, skip_unless_acc, TfDir};

const REQUIRED_PROVIDERS: &str =
    "terraform {\n  required_providers {\n    tandem = { source = \"tandem/tandem\" }\n  }\n}\n";

/// Directories holding `.tf` files, recursively.
fn example_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut has_tf = false;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && !p.ends_with(".terraform") {
            example_dirs(&p, out);
        } else if p.extension().is_some_and(|x| x == "tf") {
            has_tf = true;
        }
    }
    if has_tf {
        out.push(dir.to_path_buf());
    }
}

#[test]
fn every_example_validates() {
    skip_unless_acc!();
    let mut dirs = Vec::new();
    example_dirs(&repo_root().join("examples"), &mut dirs);
    dirs.sort();
    assert!(!dirs.is_empty());
    let mut failures = Vec::new();
    for ex in &dirs {
        let rel = ex.strip_prefix(repo_root()).unwrap_or(ex);
        // The example keeps its place relative to `modules/`, so module
        // sources like `../../modules/x` resolve as in the repo.
        let dir = TfDir::new();
        let work = dir.path().join(rel);
        std::fs::create_dir_all(&work).unwrap();
        std::os::unix::fs::symlink(repo_root().join("modules"), dir.path().join("modules"))
            .unwrap();
        let mut declares_providers = false;
        let mut uses_modules = false;
        for e in std::fs::read_dir(ex).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "tf") {
                let body = std::fs::read_to_string(&p).unwrap();
                declares_providers |= body.contains("required_providers");
                uses_modules |= body.contains("module \"");
                std::fs::write(work.join(e.file_name()), body).unwrap();
            }
        }
        if !declares_providers {
            std::fs::write(work.join("versions_test.tf"), REQUIRED_PROVIDERS).unwrap();
        }
        let chdir = format!("-chdir={}", rel.display());
        if uses_modules {
            let init = dir.run(&[
                &chdir,
                "init",
                "-backend=false",
                "-no-color",
                "-input=false",
            ]);
            if init.code != 0 {
                failures.push(format!("{}: init failed:\n{}", rel.display(), init.all()));
                continue;
            }
        }
        let out = dir.run(&[&chdir, "validate", "-no-color"]);
        if out.code != 0 {
            failures.push(format!("{}:\n{}", rel.display(), out.all()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples fail validate:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
