//! Stamps the binary with the source revision for `tandem_build_info`:
//! `TANDEM_REVISION` when the build sets it (release pipelines, a tarball
//! build that knows its commit), else `git rev-parse` when built from a
//! checkout, else "unknown" (a tarball without git still builds).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TANDEM_REVISION");
    let rev = std::env::var("TANDEM_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TANDEM_REVISION={}", rev.trim());
}

/// Output of a git command, trimmed, when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}

/// The checkout's revision, and a rerun of this script when HEAD or the
/// branch it names moves (paths through `--git-path`, which also finds
/// them from a worktree).
fn git_revision() -> Option<String> {
    let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watch.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for w in watch {
        // Only files that exist: cargo reruns the script on every build
        // for a missing one (no packed-refs yet, say).
        let p = git(&["rev-parse", "--git-path", &w]).filter(|p| std::path::Path::new(p).exists());
        if let Some(p) = p {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    Some(rev)
}
