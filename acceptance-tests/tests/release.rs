//! Shipping: what `make release` and the tag workflow produce.
//!
//! - `scripts/release` packages the provider, `tandem-review` and
//!   `tandem-proxy` with their sums; the provider's `SHA256SUMS` is signed
//!   with a throw-away GPG key, the signature verifies and a tampered copy
//!   does not; `terraform init` from the filesystem mirror (no
//!   dev_overrides) writes a lock file whose hash is the zip's, verifies on
//!   the next init and catches a tampered zip.
//! - `scripts/release-notes` prints one version's changelog section, and
//!   refuses a version the changelog lacks.
//! - `.github/workflows/release.yml` runs those same scripts on every
//!   platform of the matrix.
//! - The `Dockerfile`'s final stage: pinned bases, a numeric non-root user,
//!   no shell, OCI labels; and the proxy binary runs as that user, with no
//!   shell, from a read-only directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml_ng::Value as Yaml;
use tandem_acceptance::{repo_root, skip_unless_acc, terraform_bin, unique, Moto, TfDir};

/// The workspace version, which every artifact name carries.
fn version() -> String {
    let cargo = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("a workspace version in Cargo.toml")
        .to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `scripts/release ARGS` into `dist`, packaging the debug build.
fn release(dist: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(repo_root().join("scripts/release"));
    cmd.args(args)
        .env("DIST_DIR", dist)
        .env_remove("TANDEM_GPG_KEY_ID");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run scripts/release")
}

/// A GnuPG home of its own, with one throw-away signing key and no
/// passphrase. Its agent is stopped when dropped.
struct Gpg {
    home: tempfile::TempDir,
    fingerprint: String,
}

impl Gpg {
    fn new() -> Gpg {
        // Under /tmp: the agent's socket path must stay short (108 bytes).
        let home = tempfile::Builder::new()
            .prefix("tandem-gpg")
            .tempdir_in("/tmp")
            .unwrap();
        let gen = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args([
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "Tandem Release Test <release-test@tandem.invalid>",
                // The Terraform registry takes RSA (or DSA) keys.
                "rsa2048",
                "sign",
                "never",
            ])
            .output()
            .expect("run gpg (Debian package gnupg; scripts/bootstrap test installs it)");
        assert!(gen.status.success(), "gpg key: {}", text(&gen.stderr));
        let list = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--with-colons", "--list-secret-keys"])
            .output()
            .unwrap();
        let fingerprint = text(&list.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .expect("the new key's fingerprint")
            .to_string();
        Gpg { home, fingerprint }
    }

    fn home(&self) -> &str {
        self.home.path().to_str().unwrap()
    }

    /// `gpg --verify SIG FILE` with this key's keyring.
    fn verify(&self, sig: &Path, file: &Path) -> Output {
        Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--verify"])
            .arg(sig)
            .arg(file)
            .output()
            .unwrap()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// Terraform's `h1:` hash of a provider zip: SHA-256 over the sorted lines
/// `<sha256 hex>  <name>` of its files (golang.org/x/mod/sumdb/dirhash
/// Hash1), computed here independently of Terraform.
fn h1_of_zip(zip: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import base64, hashlib, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             lines = ''.join(f'{hashlib.sha256(z.read(n)).hexdigest()}  {n}\\n' for n in sorted(z.namelist()))\n\
             print('h1:' + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode())",
        )
        .arg(zip)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// A zip holding one file `name` whose bytes are not a provider: what
/// `providers lock` hashes but never runs, standing in for another
/// platform's build.
fn stand_in_zip(path: &Path, name: &str) {
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile\nzipfile.ZipFile(sys.argv[1], 'w').writestr(sys.argv[2], b'stand-in')")
        .arg(path)
        .arg(name)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Removes the files (not directories) of `dir` whose names start with
/// `prefix`.
fn remove_prefixed(dir: &Path, prefix: &str) {
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with(prefix) && f.path().is_file() {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
}

#[test]
fn unsigned_release_warns_and_require_signature_refuses() {
    skip_unless_acc!();
    let v = version();
    let dist = tempfile::tempdir().unwrap();
    let out = release(dist.path(), &["--debug"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("WARNING: TANDEM_GPG_KEY_ID is not set") && err.contains("NOT signed"),
        "{err}"
    );
    assert!(!dist
        .path()
        .join(format!("terraform-provider-tandem_{v}_SHA256SUMS.sig"))
        .exists());

    let refused = release(dist.path(), &["sums", "--require-signature"], &[]);
    assert!(!refused.status.success(), "unsigned sums were accepted");
    assert!(
        text(&refused.stderr)
            .contains("TANDEM_GPG_KEY_ID is not set, and --require-signature was given"),
        "{}",
        text(&refused.stderr)
    );

    // A Windows platform's dist has no tandem-proxy: its sums are left out,
    // the others written. Without a provider zip there is no release.
    remove_prefixed(dist.path(), "tandem-proxy_");
    let without_proxy = release(dist.path(), &["sums"], &[]);
    assert!(
        without_proxy.status.success(),
        "{}",
        text(&without_proxy.stderr)
    );
    assert!(!dist
        .path()
        .join(format!("tandem-proxy_{v}_SHA256SUMS"))
        .exists());
    assert!(dist
        .path()
        .join(format!("tandem-review_{v}_SHA256SUMS"))
        .exists());
    remove_prefixed(dist.path(), "terraform-provider-tandem_");
    let no_provider = release(dist.path(), &["sums"], &[]);
    assert!(!no_provider.status.success());
    assert!(
        text(&no_provider.stderr).contains(&format!("has no terraform-provider-tandem_{v}_*.zip")),
        "{}",
        text(&no_provider.stderr)
    );

    let bad = release(
        dist.path(),
        &["--target", "riscv64gc-unknown-linux-gnu"],
        &[],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr)
            .contains("target riscv64gc-unknown-linux-gnu: not an x86_64 or aarch64 triple"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn signed_release_verifies_and_init_from_mirror_matches_the_lock_file() {
    skip_unless_acc!();
    let v = version();
    let gpg = Gpg::new();
    let dist = tempfile::tempdir().unwrap();
    let out = release(
        dist.path(),
        &["--debug", "--require-signature"],
        &[
            ("GNUPGHOME", gpg.home()),
            ("TANDEM_GPG_KEY_ID", &gpg.fingerprint),
        ],
    );
    assert!(
        out.status.success(),
        "scripts/release failed:\n{}",
        text(&out.stderr)
    );
    let platform = format!(
        "linux_{}",
        match std::env::consts::ARCH {
            "aarch64" => "arm64",
            _ => "amd64",
        }
    );
    for tool in ["terraform-provider-tandem", "tandem-review", "tandem-proxy"] {
        let zip = format!("{tool}_{v}_{platform}.zip");
        assert!(dist.path().join(&zip).exists(), "{zip} missing");
        let sums =
            std::fs::read_to_string(dist.path().join(format!("{tool}_{v}_SHA256SUMS"))).unwrap();
        assert!(sums.contains(&format!("  {zip}\n")), "{tool} sums:\n{sums}");
    }
    // The manifest is the committed file, byte for byte.
    assert_eq!(
        std::fs::read(
            dist.path()
                .join(format!("terraform-provider-tandem_{v}_manifest.json"))
        )
        .unwrap(),
        std::fs::read(repo_root().join("terraform-registry-manifest.json")).unwrap()
    );

    // The detached signature verifies the sums, and not a tampered copy.
    let sums = dist
        .path()
        .join(format!("terraform-provider-tandem_{v}_SHA256SUMS"));
    let sig = dist
        .path()
        .join(format!("terraform-provider-tandem_{v}_SHA256SUMS.sig"));
    let good = gpg.verify(&sig, &sums);
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(
        text(&good.stderr).contains("Good signature"),
        "{}",
        text(&good.stderr)
    );
    let tampered = dist.path().join("tampered_SHA256SUMS");
    let mut body = std::fs::read(&sums).unwrap();
    body[0] = if body[0] == b'0' { b'1' } else { b'0' };
    std::fs::write(&tampered, body).unwrap();
    let bad = gpg.verify(&sig, &tampered);
    assert!(!bad.status.success(), "a tampered SHA256SUMS verified");
    assert!(
        text(&bad.stderr).contains("BAD signature"),
        "{}",
        text(&bad.stderr)
    );

    let mirror = dist.path().join("mirror");
    let cli = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/tandem/tandem\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/tandem/tandem\"]\n  }}\n}}\ndisable_checkpoint = true\n",
        mirror.display()
    );
    let moto = Moto::shared();
    let dir = TfDir::with_cli_config(terraform_bin(), &cli);
    let config = moto.provider_block().replace(
        "tandem = { source = \"tandem/tandem\" }",
        &format!("tandem = {{\n      source  = \"tandem/tandem\"\n      version = \"{v}\"\n    }}"),
    );
    dir.write(&format!(
        "{config}\nresource \"tandem_route53_zone\" \"z\" {{\n  name          = \"{}.tandem.test\"\n  force_destroy = true\n}}\n",
        unique("mirror")
    ));
    let init = dir.ok(&["init", "-no-color", "-input=false"]);
    assert!(
        init.stdout
            .contains(&format!("Installing tandem/tandem v{v}")),
        "{}",
        init.all()
    );
    assert!(
        !init.all().contains("overrides"),
        "dev_overrides must not be in effect:\n{}",
        init.all()
    );
    let lock =
        std::fs::read_to_string(dir.path().join(".terraform.lock.hcl")).expect("lock file written");
    let zip = mirror.join(format!(
        "registry.terraform.io/tandem/tandem/terraform-provider-tandem_{v}_{platform}.zip"
    ));
    let h1 = h1_of_zip(&zip);
    assert!(
        lock.contains("registry.terraform.io/tandem/tandem") && lock.contains(&format!("\"{h1}\"")),
        "the lock file does not hold the zip's hash {h1}:\n{lock}"
    );

    dir.apply();
    dir.plan_is_empty();
    dir.destroy();

    // A second init verifies the installed package against the lock file.
    let again = dir.ok(&["init", "-no-color", "-input=false"]);
    assert!(
        again
            .stdout
            .contains(&format!("Using previously-installed tandem/tandem v{v}")),
        "{}",
        again.all()
    );

    // `providers lock` hashes only what the mirror holds: another
    // platform's hash needs that platform's zip put there first
    // (docs/guides/installation.md says so).
    let other = if platform == "darwin_arm64" {
        "darwin_amd64"
    } else {
        "darwin_arm64"
    };
    let fs_mirror = format!("-fs-mirror={}", mirror.display());
    let (this_p, other_p) = (
        format!("-platform={platform}"),
        format!("-platform={other}"),
    );
    let lock_args = [
        "providers",
        "lock",
        "-no-color",
        &fs_mirror,
        &this_p,
        &other_p,
    ];
    let missing = dir.run(&lock_args);
    assert_ne!(missing.code, 0, "{}", missing.all());
    assert!(missing.all().contains(other), "{}", missing.all());
    let other_zip = zip.with_file_name(format!("terraform-provider-tandem_{v}_{other}.zip"));
    stand_in_zip(&other_zip, &format!("terraform-provider-tandem_v{v}"));
    dir.ok(&lock_args);
    let lock = std::fs::read_to_string(dir.path().join(".terraform.lock.hcl")).unwrap();
    for z in [&zip, &other_zip] {
        let h1 = h1_of_zip(z);
        assert!(
            lock.contains(&format!("\"{h1}\"")),
            "no {h1} for {}:\n{lock}",
            z.display()
        );
    }

    // A tampered package in the mirror no longer matches the lock file.
    let mut bytes = std::fs::read(&zip).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&zip, bytes).unwrap();
    std::fs::remove_dir_all(dir.path().join(".terraform")).unwrap();
    let tampered = dir.run(&["init", "-no-color", "-input=false"]);
    assert_ne!(
        tampered.code,
        0,
        "init accepted a tampered package:\n{}",
        tampered.all()
    );
    assert!(
        tampered.all().contains("checksum") || tampered.all().contains("doesn't match"),
        "{}",
        tampered.all()
    );
}

// ---- release notes ------------------------------------------------------

fn release_notes(args: &[&str], changelog: Option<&Path>) -> Output {
    let mut cmd = Command::new(repo_root().join("scripts/release-notes"));
    cmd.args(args);
    if let Some(c) = changelog {
        cmd.env("CHANGELOG", c);
    }
    cmd.output().expect("run scripts/release-notes")
}

#[test]
fn release_notes_print_the_versions_section_only() {
    let v = version();
    for arg in [v.clone(), format!("v{v}")] {
        let out = release_notes(&[&arg], None);
        assert!(out.status.success(), "{arg}: {}", text(&out.stderr));
        let notes = text(&out.stdout);
        assert!(notes.contains("### Added"), "{notes}");
        assert!(
            !notes.contains("## ["),
            "another section leaked in:\n{notes}"
        );
        assert!(!notes.starts_with('\n') && !notes.ends_with("\n\n"));
    }
    // The workspace version has an entry: a release of it has notes.
    let changelog = std::fs::read_to_string(repo_root().join("CHANGELOG.md")).unwrap();
    assert!(changelog.contains(&format!("\n## [{v}]")));

    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("CHANGELOG.md");
    std::fs::write(
        &c,
        "# Changelog\n\n## [Unreleased]\n\n## [1.1.0] - 2026-12-01\n\n### Fixed\n\n- b\n\n## [1.0.0]\n\n- a\n\n[1.1.0]: https://x\n",
    )
    .unwrap();
    let out = release_notes(&["1.1.0"], Some(&c));
    assert_eq!(text(&out.stdout), "### Fixed\n\n- b\n");
    let out = release_notes(&["1.0.0"], Some(&c));
    assert_eq!(
        text(&out.stdout),
        "- a\n",
        "the link references are not notes"
    );
}

#[test]
fn release_notes_refuse_a_missing_or_empty_version() {
    let out = release_notes(&["9.9.9"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no section for version 9.9.9") && err.contains("Unreleased"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("CHANGELOG.md");
    std::fs::write(&c, "## [Unreleased]\n\n## [1.0.0]\n\n- a\n").unwrap();
    let out = release_notes(&["Unreleased"], Some(&c));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the section for version Unreleased")
            && text(&out.stderr).contains("is empty"),
        "{}",
        text(&out.stderr)
    );

    let out = release_notes(&[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage: scripts/release-notes <version>"));
}

// ---- the workflow -------------------------------------------------------

fn at<'a>(v: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter().fold(v, |v, k| {
        v.get(*k)
            .unwrap_or_else(|| panic!("release.yml has no {}", path.join(".")))
    })
}

/// Every `run:` script of a job's steps.
fn runs(job: &Yaml) -> Vec<String> {
    at(job, &["steps"])
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s.get("run").and_then(Yaml::as_str).map(str::to_string))
        .collect()
}

#[test]
fn release_workflow_runs_the_release_scripts_on_every_platform() {
    let root = repo_root();
    let wf: Yaml = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join(".github/workflows/release.yml")).unwrap(),
    )
    .expect("release.yml is YAML");
    let tags = at(&wf, &["on", "push", "tags"]);
    assert_eq!(tags, &Yaml::Sequence(vec![Yaml::String("v*".into())]));

    let jobs = at(&wf, &["jobs"]);
    let platform = at(jobs, &["platform"]);
    let mut seen = BTreeSet::new();
    for e in at(platform, &["strategy", "matrix", "include"])
        .as_sequence()
        .unwrap()
    {
        let get = |k: &str| at(e, &[k]).as_str().unwrap().to_string();
        let (os, arch, target) = (get("os"), get("arch"), get("target"));
        // scripts/release names the platform from the triple: the matrix
        // must agree, or the artifact would carry another name.
        let want_os = match os.as_str() {
            "linux" => "-linux-",
            "darwin" => "-apple-darwin",
            "windows" => "-windows-",
            other => panic!("unexpected os {other}"),
        };
        let want_arch = match arch.as_str() {
            "amd64" => "x86_64-",
            "arm64" => "aarch64-",
            other => panic!("unexpected arch {other}"),
        };
        assert!(
            target.contains(want_os) && target.starts_with(want_arch),
            "{os}_{arch} builds {target}"
        );
        assert!(seen.insert((os, arch)), "a platform twice");
    }
    let want: BTreeSet<_> = ["linux", "darwin", "windows"]
        .iter()
        .flat_map(|os| ["amd64", "arm64"].map(|a| (os.to_string(), a.to_string())))
        .collect();
    assert_eq!(seen, want);

    // The platform job runs what `make release` runs, for its target.
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    assert!(
        makefile.contains("release:\n\t@scripts/bootstrap demo\n\tscripts/release\n"),
        "make release no longer runs scripts/release"
    );
    assert!(
        runs(platform).contains(&"scripts/release --target ${{ matrix.target }}".to_string()),
        "{:?}",
        runs(platform)
    );

    let publish = at(jobs, &["publish"]);
    assert_eq!(at(publish, &["needs"]).as_str(), Some("platform"));
    let p = runs(publish).join("\n");
    for needle in [
        "scripts/release sums --require-signature",
        "scripts/release-notes \"$GITHUB_REF_NAME\" > notes.md",
        "--notes-file notes.md",
        "dist/*_SHA256SUMS.sig",
    ] {
        assert!(p.contains(needle), "publish lacks {needle}:\n{p}");
    }

    let image = runs(at(jobs, &["image"])).join("\n");
    for needle in [
        "--platform linux/amd64,linux/arm64",
        "--tag \"ghcr.io/tandem/tandem-proxy:$version\"",
        "--push",
        "--build-arg VERSION=",
        "--build-arg REVISION=",
        "--build-arg SOURCE=",
    ] {
        assert!(image.contains(needle), "image lacks {needle}:\n{image}");
    }
    // The image the proxy-fleet module deploys is the one pushed.
    let vars = std::fs::read_to_string(root.join("modules/proxy-fleet/variables.tf")).unwrap();
    assert!(vars.contains(&format!("\"ghcr.io/tandem/tandem-proxy:{}\"", version())));

    // Every script a step calls exists and is executable.
    let all: Vec<String> = ["platform", "publish", "image"]
        .iter()
        .flat_map(|j| runs(at(jobs, &[j])))
        .collect();
    for script in all.iter().flat_map(|r| {
        r.split_whitespace()
            .filter(|w| w.starts_with("scripts/"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    }) {
        let meta = std::fs::metadata(root.join(&script))
            .unwrap_or_else(|e| panic!("release.yml runs {script}: {e}"));
        assert!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
            "{script} is not executable"
        );
    }
}

// ---- the container image ------------------------------------------------

/// The Dockerfile's instructions, continuation lines joined, comments and
/// blank lines dropped, as (KEYWORD, rest).
fn dockerfile(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                let (k, rest) = cur.split_once(' ').unwrap_or((&cur, ""));
                out.push((k.to_ascii_uppercase(), rest.trim().to_string()));
                cur.clear();
            }
        }
    }
    out
}

#[test]
fn dockerfile_final_stage_is_pinned_non_root_shell_free_and_labelled() {
    let root = repo_root();
    let file = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let ins = dockerfile(&file);
    let stages: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "a build stage and a final stage");
    for &i in &stages {
        let image = ins[i].1.split_whitespace().next().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest" && !tag.contains('/'),
            "FROM {image} is not pinned to a tag"
        );
    }

    // The build stage's Rust is the pinned toolchain.
    let toolchain = std::fs::read_to_string(root.join("rust-toolchain.toml")).unwrap();
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = \""))
        .and_then(|c| c.strip_suffix('"'))
        .unwrap();
    let build = &ins[stages[0]].1;
    assert!(
        build.starts_with(&format!("docker.io/library/rust:{channel}-")),
        "the build stage {build} is not Rust {channel}"
    );

    let last = &ins[*stages.last().unwrap()..];
    let base = &last[0].1;
    assert!(
        base.starts_with("gcr.io/distroless/"),
        "final stage {base} is not distroless (no shell)"
    );
    // No RUN (there is no shell to run it), exec-form entrypoint.
    for (k, rest) in last {
        assert_ne!(k, "RUN", "the final stage runs {rest}: it has no shell");
        if k == "ENTRYPOINT" || k == "CMD" {
            assert!(rest.starts_with('['), "{k} {rest} needs a shell");
        }
    }
    let user = last
        .iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .map(|(_, u)| u.clone())
        .expect("the final stage sets USER");
    let ids: Vec<u32> = user
        .split(':')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("USER {user} is not numeric"))
        })
        .collect();
    assert!(
        ids.iter().all(|&id| id == 65532),
        "USER {user}: not distroless' nonroot 65532"
    );
    let labels: String = last
        .iter()
        .filter(|(k, _)| k == "LABEL")
        .map(|(_, l)| l.as_str())
        .collect();
    for (label, arg) in [
        ("version", "VERSION"),
        ("revision", "REVISION"),
        ("source", "SOURCE"),
    ] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{label}=\"${{{arg}}}\"")),
            "no org.opencontainers.image.{label} from ARG {arg}"
        );
        assert!(
            last.iter().any(|(k, a)| k == "ARG" && a.starts_with(arg)),
            "ARG {arg} is not declared in the final stage"
        );
    }

    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    for p in ["target/", ".cache/", ".git/"] {
        assert!(ignore.lines().any(|l| l == p), ".dockerignore lacks {p}");
    }
}

/// The user the image runs as (distroless' nonroot).
const IMAGE_UID: u32 = 65532;

/// What the image's base provides: glibc and libgcc (distroless/cc).
const BASE_LIBS: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

#[test]
fn proxy_runs_as_the_image_user_without_a_shell_from_a_read_only_dir() {
    skip_unless_acc!();
    let built: PathBuf = repo_root().join("target/debug/tandem-proxy");
    assert!(built.exists(), "build tandem-proxy first (make test does)");

    // Every shared library the binary needs is in distroless/cc.
    let elf = Command::new("readelf")
        .arg("-d")
        .arg(&built)
        .output()
        .expect("run readelf (binutils, which Rust's linker brings)");
    for lib in text(&elf.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
    {
        assert!(
            BASE_LIBS.contains(&lib),
            "tandem-proxy needs {lib}, which distroless/cc does not have"
        );
    }

    // Switching users needs root, as the image's runtime does not.
    let uid = Command::new("id").arg("-u").output().unwrap();
    if text(&uid.stdout).trim() != "0" {
        eprintln!("skipped the uid part: only root can run a process as uid {IMAGE_UID}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("tandem-proxy");
    std::fs::copy(&built, &bin).unwrap();
    let config = dir.path().join("proxy.yaml");
    std::fs::write(
        &config,
        "buckets:\n  - name: assets\n    path_prefix: /assets/\n    replicas:\n      - {name: eu, bucket: assets-eu, region: eu-west-1}\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    // No shell: the binary is exec'd straight, with an empty environment
    // (no PATH, no SHELL), as the image's exec-form ENTRYPOINT does.
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={IMAGE_UID}"),
            &format!("--regid={IMAGE_UID}"),
            "--clear-groups",
            "--no-new-privs",
        ])
        .arg(&bin)
        .args(["check", "--config"])
        .arg(&config)
        .env_clear()
        .output()
        .expect("run setpriv (util-linux)");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        out.status.success(),
        "tandem-proxy check as uid {IMAGE_UID}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
