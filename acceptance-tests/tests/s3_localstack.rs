//! The faithful lane for replication: LocalStack's S3 round-trips rules
//! (And/Tags filters, delete-marker replication, RTC and metrics) where
//! moto hard-codes `Filter{Prefix:""}`. Runs when `scripts/bootstrap` could
//! install LocalStack (it needs Python 3.13) and says clearly when not.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tandem_acceptance::{free_port, repo_root, skip_unless_acc, unique, Tethered, TfDir};

/// LocalStack on a loopback port, stopped with the test. Before
/// `Tethered`, dropping this SIGKILLed the wrapper shell and left LocalStack
/// running after every `make test`.
struct LocalStack {
    _server: Tethered,
    port: u16,
}

fn python() -> Option<PathBuf> {
    let p = repo_root().join(".cache/localstack/bin/python");
    p.exists().then_some(p)
}

fn start(py: &std::path::Path) -> LocalStack {
    let port = free_port();
    let server = Tethered::spawn(
        &format!(
            "GATEWAY_LISTEN=127.0.0.1:{port} SERVICES=s3 DNS_ADDRESS=0 '{}' -m localstack.runtime.main",
            py.display()
        ),
        "LocalStack",
    )
    .expect("start LocalStack");
    let ls = LocalStack {
        _server: server,
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write as _;
            let _ = write!(s, "GET /_localstack/health HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.contains("\"s3\"") {
                return ls;
            }
        }
        assert!(
            Instant::now() < deadline,
            "LocalStack did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn replication_with_tags_rtc_and_delete_markers_plans_empty_on_localstack() {
    skip_unless_acc!();
    let Some(py) = python() else {
        eprintln!("skipped: LocalStack lane not installed (.cache/localstack needs Python 3.13; see scripts/bootstrap)");
        return;
    };
    let ls = start(&py);
    let e = format!("http://127.0.0.1:{}", ls.port);
    let (src, dst) = (unique("ls-src"), unique("ls-dst"));
    let dir = TfDir::new();
    dir.write(&format!(
        r#"
terraform {{
  required_providers {{
    tandem = {{ source = "tandem/tandem" }}
  }}
}}
provider "tandem" {{
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  s3_use_path_style           = true
  skip_credentials_validation = true
  endpoints {{
    s3  = "{e}"
    sts = "{e}"
  }}
}}
resource "tandem_s3_bucket" "src" {{
  bucket        = "{src}"
  region        = "eu-west-1"
  force_destroy = true
}}
resource "tandem_s3_bucket" "dst" {{
  bucket        = "{dst}"
  region        = "us-east-1"
  force_destroy = true
}}
resource "tandem_s3_bucket_versioning" "src" {{
  bucket = tandem_s3_bucket.src.bucket
  region = tandem_s3_bucket.src.region
  status = "Enabled"
}}
resource "tandem_s3_bucket_versioning" "dst" {{
  bucket = tandem_s3_bucket.dst.bucket
  region = tandem_s3_bucket.dst.region
  status = "Enabled"
}}
resource "tandem_s3_bucket_replication" "r" {{
  bucket = tandem_s3_bucket_versioning.src.bucket
  region = tandem_s3_bucket_versioning.src.region
  role   = "arn:aws:iam::000000000000:role/replication"

  rule {{
    id                        = "tagged"
    priority                  = 1
    delete_marker_replication = true
    filter {{
      prefix = "img/"
      tags = {{
        replicate = "yes"
        tier      = "hot"
      }}
    }}
    destination {{
      bucket           = tandem_s3_bucket.dst.arn
      region           = tandem_s3_bucket_versioning.dst.region
      storage_class    = "STANDARD_IA"
      replication_time = true
      metrics          = true
    }}
  }}

  rule {{
    id       = "one-tag"
    priority = 2
    filter {{
      tags = {{
        archive = "true"
      }}
    }}
    destination {{
      bucket = tandem_s3_bucket.dst.arn
      region = tandem_s3_bucket_versioning.dst.region
    }}
  }}
}}
"#
    ));
    dir.apply();
    // The point of this lane: what S3 returns reads back exactly as written.
    dir.plan_is_empty();
    dir.reimport(
        "tandem_s3_bucket_replication.r",
        &format!("{src}@eu-west-1"),
    );
    dir.destroy();
}
