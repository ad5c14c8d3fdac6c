//! Each module's own `tests/*.tftest.hcl`, run by `terraform test` against
//! moto through the provider as built (or offline, with `mock_provider`).
//! The test files take the emulator's address as `-var aws_endpoint=...`.

use tandem_acceptance::{copy_dir, repo_root, skip_unless_acc, Moto, TfDir};

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
