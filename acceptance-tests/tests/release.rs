//! Installing the provider as users do: `terraform init` from a filesystem
//! mirror produced by `scripts/release`, with no dev_overrides; the lock
//! file it writes must verify on the next init and catch a tampered zip.

use std::process::Command;

use tandem_acceptance::{repo_root, skip_unless_acc, terraform_bin, unique, Moto, TfDir};

#[test]
fn init_from_release_mirror_applies_and_lock_file_verifies() {
    skip_unless_acc!();
    let dist = tempfile::tempdir().unwrap();
    let out = Command::new(repo_root().join("scripts/release"))
        .arg("--debug")
        .env("DIST_DIR", dist.path())
        .output()
        .expect("run scripts/release");
    assert!(
        out.status.success(),
        "scripts/release failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "terraform-provider-tandem_0.1.0_SHA256SUMS",
        "terraform-provider-tandem_0.1.0_manifest.json",
    ] {
        assert!(dist.path().join(f).exists(), "{f} missing");
    }
    let mirror = dist.path().join("mirror");
    let cli = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/tandem/tandem\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/tandem/tandem\"]\n  }}\n}}\ndisable_checkpoint = true\n",
        mirror.display()
    );
    let moto = Moto::shared();
    let dir = TfDir::with_cli_config(terraform_bin(), &cli);
    let config = moto.provider_block().replace(
        "tandem = { source = \"tandem/tandem\" }",
        "tandem = {\n      source  = \"tandem/tandem\"\n      version = \"0.1.0\"\n    }",
    );
    dir.write(&format!(
        "{config}\nresource \"tandem_route53_zone\" \"z\" {{\n  name          = \"{}.tandem.test\"\n  force_destroy = true\n}}\n",
        unique("mirror")
    ));
    let init = dir.ok(&["init", "-no-color", "-input=false"]);
    assert!(
        init.stdout.contains("Installing tandem/tandem v0.1.0"),
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
    assert!(
        lock.contains("registry.terraform.io/tandem/tandem") && lock.contains("h1:"),
        "{lock}"
    );

    dir.apply();
    dir.plan_is_empty();
    dir.destroy();

    // A second init verifies the installed package against the lock file.
    let again = dir.ok(&["init", "-no-color", "-input=false"]);
    assert!(
        again
            .stdout
            .contains("Using previously-installed tandem/tandem v0.1.0"),
        "{}",
        again.all()
    );

    // A tampered package in the mirror no longer matches the lock file.
    let zip = std::fs::read_dir(mirror.join("registry.terraform.io/tandem/tandem"))
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "zip"))
        .unwrap()
        .path();
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
