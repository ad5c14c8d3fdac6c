//! Each module's own `tests/*.tftest.hcl`, run by `terraform test` against
//! moto through the provider as built. The test files take the emulator's
//! address as `-var aws_endpoint=...`.

use std::path::Path;

use tandem_acceptance::{repo_root, skip_unless_acc, Moto, TfDir};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == ".terraform" || name == ".terraform.lock.hcl" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

#[test]
fn every_module_passes_its_terraform_tests() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let mut modules: Vec<_> = std::fs::read_dir(repo_root().join("modules"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("tests").is_dir())
                .collect()
        })
        .unwrap_or_default();
    modules.sort();
    let mut failures = Vec::new();
    for m in &modules {
        let name = m.file_name().unwrap().to_string_lossy().into_owned();
        let dir = TfDir::new();
        // Keep modules/<name> so modules that call siblings by
        // `../other` still resolve.
        copy_dir(&repo_root().join("modules"), &dir.path().join("modules"));
        let chdir = format!("-chdir=modules/{name}");
        let init = dir.run(&[
            &chdir,
            "init",
            "-backend=false",
            "-no-color",
            "-input=false",
        ]);
        if init.code != 0 {
            failures.push(format!("{name}: init failed\n{}", init.all()));
            continue;
        }
        let var = format!("aws_endpoint={}", moto.endpoint());
        let out = dir.run(&[&chdir, "test", "-no-color", "-var", &var]);
        eprintln!("module {name}: {}", out.stdout.lines().last().unwrap_or(""));
        if out.code != 0 {
            failures.push(format!("{name}:\n{}", out.all()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
