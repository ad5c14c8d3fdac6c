//! `scripts/bootstrap` on a machine without apt: it must stop at once,
//! naming what to install by hand, before it creates or downloads
//! anything. Run in a copy of the script with a PATH that has the basic
//! tools but neither apt-get nor the servers.

use std::path::Path;
use std::process::Command;

use tandem_acceptance::repo_root;

/// Links the tools the script's checks use into `bin`, and nothing else.
fn minimal_path(bin: &Path) {
    std::fs::create_dir_all(bin).unwrap();
    for tool in [
        "bash", "env", "dirname", "id", "cat", "grep", "mkdir", "tail", "python3",
    ] {
        let found = ["/usr/bin", "/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .or_else(|| {
                // python3 may live elsewhere (pyenv); take the real binary.
                Command::new("python3")
                    .args(["-c", "import sys; print(sys.executable)"])
                    .output()
                    .ok()
                    .filter(|_| tool == "python3")
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().into())
            })
            .unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
}

#[test]
fn without_apt_the_bootstrap_stops_at_once_naming_what_to_install() {
    let repo = tempfile::tempdir().unwrap();
    let scripts = repo.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::copy(
        repo_root().join("scripts/bootstrap"),
        scripts.join("bootstrap"),
    )
    .unwrap();
    let bin = repo.path().join("bin");
    minimal_path(&bin);
    for part in ["demo", "test"] {
        let out = Command::new(bin.join("bash"))
            .arg(scripts.join("bootstrap"))
            .arg(part)
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", repo.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{part}: {text}");
        assert!(text.contains("no apt-get"), "{part}: {text}");
        for want in ["redis-server", "(Debian package redis-tools)", "curl"] {
            assert!(text.contains(want), "{part} should name {want}: {text}");
        }
        // The test part also needs the browser the report test uses; the
        // demo part never asks for it.
        assert_eq!(text.contains("chromium"), part == "test", "{part}: {text}");
        // So does gpg, for the release test's signature.
        assert_eq!(
            text.contains("(Debian package gnupg)"),
            part == "test",
            "{part}: {text}"
        );
        assert!(
            !repo.path().join(".cache").exists(),
            "{part}: nothing is created before stopping"
        );
    }
}
