//! `tandem-docs --modules`: the committed module READMEs are current, and a
//! README that drifted from its variables is reported by `--check` (exit
//! 1, naming the file) and mended by a write.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn docs(args: &[&str], modules: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem-docs"))
        .arg("--modules")
        .arg(modules)
        .args(args)
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[test]
fn committed_module_readmes_are_current() {
    let out = docs(&["--check"], &repo_root().join("modules"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_drifted_readme_fails_the_check_and_a_write_mends_it() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("demo");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(
        m.join("variables.tf"),
        "variable \"retain_config_on_destroy\" {\n  description = \"Keep the config.\"\n  type        = bool\n  default     = false\n}\n",
    )
    .unwrap();
    std::fs::write(
        m.join("outputs.tf"),
        "output \"url\" {\n  description = \"Where.\"\n  value       = \"s3://b/k\"\n}\n",
    )
    .unwrap();
    let readme = m.join("README.md");
    std::fs::write(
        &readme,
        "# demo\n\n<!-- BEGIN_TF_DOCS -->\n<!-- END_TF_DOCS -->\n\n## Tests\n",
    )
    .unwrap();

    let stale = docs(&["--check"], tmp.path());
    assert_eq!(stale.status.code(), Some(1));
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(err.contains("demo/README.md"), "{err}");

    let write = docs(&[], tmp.path());
    assert!(
        write.status.success(),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(
        text.contains("| `retain_config_on_destroy` | Keep the config. | `bool` | `false` | no |"),
        "{text}"
    );
    assert!(text.starts_with("# demo\n\n<!-- BEGIN_TF_DOCS -->\n## Inputs"));
    assert!(text.ends_with("<!-- END_TF_DOCS -->\n\n## Tests\n"));
    assert!(docs(&["--check"], tmp.path()).status.success());

    std::fs::write(&readme, "# demo\n").unwrap();
    let no_markers = docs(&["--check"], tmp.path());
    assert!(!no_markers.status.success());
    assert!(
        String::from_utf8_lossy(&no_markers.stderr)
            .contains("needs the markers <!-- BEGIN_TF_DOCS -->"),
        "{}",
        String::from_utf8_lossy(&no_markers.stderr)
    );
}
