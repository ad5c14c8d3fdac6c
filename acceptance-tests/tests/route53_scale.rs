//! Route 53 at scale, on strict lanes of their own (Route 53's 5 requests
//! per second per account, changes PENDING before INSYNC): refreshes that
//! share one listing still see drift, a hundred pairs refresh from two
//! pages of a big zone whatever Terraform's read order, two provider
//! processes on one account both finish, and a wait for INSYNC that ran
//! out resumes at the next apply instead of writing the records again.
//! The benchmark of `docs/benchmarks.md` ("Route 53 at scale") is here
//! too, ignored unless asked for.
//!
//! Gated on `TF_ACC=1` (`make test` sets it).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_route53::types::{Change, ChangeAction, ResourceRecord, ResourceRecordSet, RrType};
use tandem_acceptance::outside::{delete_record_sets_with, send_changes};
use tandem_acceptance::strict::{StrictConfig, StrictLane};
use tandem_acceptance::{block_on, sdk, skip_unless_acc, unique_label, Moto, TfDir};

/// A lane of the test's own, so its call counts are the test's alone.
fn own_lane(config: StrictConfig) -> StrictLane {
    StrictLane::start(Moto::shared(), config).expect("strict lane")
}

/// Creates a hosted zone through `lane`; returns its ID without prefix.
fn create_zone(lane: &StrictLane, name: &str) -> String {
    let c = sdk::route53(&lane.endpoint());
    let out = block_on(
        c.create_hosted_zone()
            .name(name)
            .caller_reference(unique_label("ref"))
            .send(),
    )
    .expect("CreateHostedZone");
    out.hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .expect("zone in CreateHostedZone response")
}

/// Sends one change batch through `lane` (outside Terraform).
fn change(lane: &StrictLane, zone: &str, changes: Vec<Change>) {
    send_changes(&sdk::route53(&lane.endpoint()), zone, changes);
}

fn a_record(name: &str, ip: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(ip).build().expect("rr"))
        .build()
        .expect("rrs")
}

/// `n` other A record sets `other0.ZONE` … in `zone`, which sort before
/// the pairs' `r0.ZONE` …, in batches of 500 (Route 53 takes 1,000
/// records per request).
fn add_others(lane: &StrictLane, zone: &str, zone_name: &str, n: usize) {
    let others: Vec<Change> = (0..n)
        .map(|i| {
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(a_record(
                    &format!("other{i}.{zone_name}"),
                    &format!("198.51.100.{}", i % 250 + 1),
                ))
                .build()
                .expect("change")
        })
        .collect();
    for chunk in others.chunks(500) {
        change(lane, zone, chunk.to_vec());
    }
}

/// `n` health checks and `n` failover pairs `r0.ZONE` … in `zone`, each
/// primary following its own check; `extra` goes into every pair.
fn pairs_config(zone: &str, zone_name: &str, n: usize, extra: &str) -> String {
    format!(
        r#"
resource "tandem_route53_health_check" "hc" {{
  count         = {n}
  type          = "HTTP"
  ip_address    = "192.0.2.${{count.index % 250 + 1}}"
  resource_path = "/healthz/${{count.index}}"
}}
resource "tandem_route53_failover_record" "r" {{
  count   = {n}
  zone_id = "{zone}"
  name    = "r${{count.index}}.{zone_name}"
  type    = "A"
  ttl     = 60
  {extra}
  primary {{
    records         = ["192.0.2.1"]
    health_check_id = tandem_route53_health_check.hc[count.index].id
  }}
  secondary {{
    records = ["192.0.2.2"]
  }}
}}
"#
    )
}

/// Calls made between two readings of [`StrictLane::route53_calls`].
fn calls_since(before: &BTreeMap<String, u64>, lane: &StrictLane) -> BTreeMap<String, u64> {
    lane.route53_calls()
        .into_iter()
        .map(|(op, n)| {
            let was = before.get(&op).copied().unwrap_or(0);
            (op, n - was)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// All requests, throttled ones included.
fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

/// Requests Route 53 answered (not refused with Throttling).
fn answered(calls: &BTreeMap<String, u64>) -> u64 {
    calls
        .iter()
        .filter(|(op, _)| !op.ends_with("(throttled)"))
        .map(|(_, n)| n)
        .sum()
}

/// How many health checks the account has now.
fn account_checks(lane: &StrictLane) -> u64 {
    let out = block_on(
        sdk::route53(&lane.endpoint())
            .list_health_checks()
            .max_items(1000)
            .send(),
    )
    .expect("ListHealthChecks");
    out.health_checks().len() as u64
}

/// The next apply only waits for the pair's pending change: GetChange
/// and no ChangeResourceRecordSets, the records written once (`written`),
/// the pair INSYNC, then an empty plan.
fn next_apply_resumes(tf: &TfDir, lane: &StrictLane, record: &str, name: &str, written: &[String]) {
    let before = lane.route53_calls();
    tf.apply();
    let resumed = calls_since(&before, lane);
    assert_eq!(tf.resource(record)["change_status"], "INSYNC");
    assert_eq!(
        lane.change_actions(name),
        written,
        "the records were not written again"
    );
    assert!(
        !resumed.contains_key("ChangeResourceRecordSets") && resumed.contains_key("GetChange"),
        "{resumed:?}"
    );
    tf.assert_empty_plan("after the wait resumed");
}

// ---------------------------------------------------------------- tests

/// Twelve pairs and twelve health checks refresh from one listing of the
/// zone and one of the health checks, and a record and a health check
/// changed outside Terraform still show as drift (and only they).
#[test]
fn drift_is_still_detected_with_batched_reads() {
    skip_unless_acc!();
    const PAIRS: usize = 12;
    let lane = own_lane(StrictConfig::default());
    let zone_name = format!("drift{}.tandem-test", unique_label("s"));
    let zone = create_zone(&lane, &zone_name);
    let tf = TfDir::new().with_provider(lane.provider_block());
    tf.config(&pairs_config(&zone, &zone_name, PAIRS, ""));
    tf.apply();

    let checks_before = account_checks(&lane);
    let before = lane.route53_calls();
    tf.assert_empty_plan("after create");
    let plan = calls_since(&before, &lane);
    assert_eq!(
        plan.get("ListResourceRecordSets").copied().unwrap_or(0),
        1,
        "one listing of the zone for {PAIRS} pairs: {plan:?}"
    );
    assert!(
        !plan.contains_key("GetHealthCheck") && !plan.contains_key("ListTagsForResource"),
        "health checks come from ListHealthChecks: {plan:?}"
    );
    // The account's health checks are moto's, shared with the tests
    // running alongside (which add and delete theirs meanwhile): their
    // tags take one call per ten of them.
    let checks = checks_before.max(account_checks(&lane));
    let tags = plan.get("ListTagsForResources").copied().unwrap_or(0);
    assert!(tags <= checks.div_ceil(10), "{checks} checks: {plan:?}");
    assert!(answered(&plan) - tags <= 2, "{plan:?}");

    // Drift on one pair and on one health check.
    let name = format!("r3.{zone_name}");
    change(
        &lane,
        &zone,
        vec![Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(
                ResourceRecordSet::builder()
                    .name(&name)
                    .r#type(RrType::A)
                    .set_identifier(format!("{name}-primary"))
                    .failover(aws_sdk_route53::types::ResourceRecordSetFailover::Primary)
                    .health_check_id(
                        tf.resource("tandem_route53_health_check.hc[3]")["id"]
                            .as_str()
                            .expect("hc id"),
                    )
                    .ttl(60)
                    .resource_records(
                        ResourceRecord::builder()
                            .value("198.51.100.7")
                            .build()
                            .expect("rr"),
                    )
                    .build()
                    .expect("rrs"),
            )
            .build()
            .expect("change")],
    );
    let hc5 = tf.resource("tandem_route53_health_check.hc[5]")["id"]
        .as_str()
        .expect("hc id")
        .to_string();
    block_on(
        sdk::route53(&lane.endpoint())
            .update_health_check()
            .health_check_id(&hc5)
            .failure_threshold(9)
            .send(),
    )
    .expect("UpdateHealthCheck");

    let before = lane.route53_calls();
    let text = tf.assert_plan_shows(
        "out-of-band changes",
        &["198.51.100.7", "failure_threshold", "2 to change"],
    );
    let plan = calls_since(&before, &lane);
    assert!(
        text.contains("tandem_route53_failover_record.r[3]")
            && text.contains("tandem_route53_health_check.hc[5]"),
        "{text}"
    );
    assert_eq!(
        plan.get("ListResourceRecordSets").copied().unwrap_or(0),
        1,
        "{plan:?}"
    );
    tf.apply();
    tf.assert_empty_plan("after repair");
    tf.destroy();
}

/// Two Terraform runs with their own provider processes on one account
/// (each with its own bucket) create and destroy 20 pairs and 20 health
/// checks each at once: both finish, no Throttling reaches Terraform, and
/// the buckets' backing off keeps Route 53's refusals under a third of the
/// requests (measured: 15 %; 26 % with a pause but no slowdown).
#[test]
fn two_provider_processes_sharing_an_account_both_finish() {
    skip_unless_acc!();
    const PAIRS: usize = 20;
    let lane = own_lane(StrictConfig::default());
    let dirs: Vec<TfDir> = (0..2)
        .map(|i| {
            let zone_name = format!("two{i}{}.tandem-test", unique_label("s"));
            let zone = create_zone(&lane, &zone_name);
            let tf = TfDir::new().with_provider(lane.provider_block());
            tf.config(&pairs_config(&zone, &zone_name, PAIRS, ""));
            tf
        })
        .collect();
    let both = |args: &[&str]| {
        let mut running: Vec<_> = dirs.iter().map(|d| d.spawn(args)).collect();
        for (i, r) in running.iter_mut().enumerate() {
            let out = r
                .wait(Duration::from_secs(600))
                .unwrap_or_else(|| panic!("run {i} of `{}` still going after 10 min", args[0]));
            assert_eq!(
                out.code,
                0,
                "run {i} of `{}` failed:\n{}",
                args[0],
                out.all()
            );
            assert!(
                !out.all().contains("Throttling") && !out.all().contains("Rate exceeded"),
                "throttling reached Terraform:\n{}",
                out.all()
            );
        }
    };
    let before = lane.route53_calls();
    both(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    for d in &dirs {
        d.assert_empty_plan("after the concurrent applies");
    }
    both(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let calls = total(&calls_since(&before, &lane));
    let throttled = lane.route53_throttled();
    eprintln!("{calls} Route 53 requests, {throttled} throttled");
    assert!(
        throttled * 3 < calls,
        "{throttled} of {calls} requests throttled: the buckets did not back off"
    );
}

/// One pair in a zone of 1,000 other record sets: its refresh lists the
/// zone's first page and the page that holds its name, not all four pages
/// (before, any read listed the whole zone: 34 calls in a zone of 10,000),
/// and a pair deleted outside Terraform is confirmed gone by a listing of
/// its own before it leaves the state.
#[test]
fn a_pair_in_a_big_zone_refreshes_from_two_pages() {
    skip_unless_acc!();
    let lane = own_lane(StrictConfig::default().change_pending(Duration::from_millis(200)));
    let zone_name = format!("big{}.tandem-test", unique_label("s"));
    let zone = create_zone(&lane, &zone_name);
    add_others(&lane, &zone, &zone_name, 1_000);
    let tf = TfDir::new().with_provider(lane.provider_block());
    tf.config(&pairs_config(&zone, &zone_name, 1, ""));
    tf.apply();

    let before = lane.route53_calls();
    tf.assert_empty_plan("one pair in a big zone");
    let plan = calls_since(&before, &lane);
    assert_eq!(plan.get("ListResourceRecordSets"), Some(&2), "{plan:?}");

    // Both halves deleted outside Terraform.
    delete_record_sets_with(
        &sdk::route53(&lane.endpoint()),
        &zone,
        &format!("r0.{zone_name}"),
    );
    let before = lane.route53_calls();
    tf.assert_plan_shows("pair deleted outside Terraform", &["will be created"]);
    let plan = calls_since(&before, &lane);
    assert_eq!(
        plan.get("ListResourceRecordSets"),
        Some(&3),
        "two pages, then a listing of the name to confirm it is gone: {plan:?}"
    );
    tf.apply();
    tf.assert_empty_plan("after the pair was written again");
    tf.destroy();
}

/// A hundred pairs whose names share their start (`r0` to `r99`) in a
/// zone of 1,000 other record sets: every plan lists the zone in two
/// pages, its first and one from `r`, in whatever order Terraform reads
/// the pairs. Before, the page after the first started at the lowest name
/// then waiting, each lower straggler cost a page more, and after two the
/// zone was listed from the bottom: up to six listings. The lane runs at
/// 50 requests a second (and the provider with it) to keep the test short;
/// which pages a plan needs depends on the order of reads, not the rate.
#[test]
fn many_pairs_refresh_from_two_pages_in_any_read_order() {
    skip_unless_acc!();
    let lane = own_lane(
        StrictConfig::default()
            .route53_rate(50)
            .change_pending(Duration::from_millis(200)),
    );
    let zone_name = format!("order{}.tandem-test", unique_label("s"));
    let zone = create_zone(&lane, &zone_name);
    add_others(&lane, &zone, &zone_name, 1_000);
    let tf = TfDir::new()
        .with_provider(lane.provider_block_with("  route53_requests_per_second = 50\n"));
    tf.config(&pairs_config(&zone, &zone_name, 100, ""));
    tf.apply();
    for run in 1..=3 {
        let before = lane.route53_calls();
        tf.assert_empty_plan("a hundred pairs in a big zone");
        let plan = calls_since(&before, &lane);
        assert_eq!(
            plan.get("ListResourceRecordSets"),
            Some(&2),
            "plan {run}: {plan:?}"
        );
    }
    tf.destroy();
}

/// A create whose wait for INSYNC runs out finishes with a warning and the
/// pair in state, `change_status = "PENDING"`; the next apply only waits
/// for that same change (a GetChange, no ChangeResourceRecordSets), and
/// then the plan is empty.
#[test]
fn an_insync_wait_that_ran_out_resumes_at_the_next_apply() {
    skip_unless_acc!();
    let lane = own_lane(StrictConfig::default().change_pending(Duration::from_secs(8)));
    let zone_name = format!("resume{}.tandem-test", unique_label("s"));
    let zone = create_zone(&lane, &zone_name);
    let tf = TfDir::new().with_provider(lane.provider_block());
    tf.config(&pairs_config(
        &zone,
        &zone_name,
        1,
        "timeouts {\n    create = \"1s\"\n  }",
    ));
    let out = tf.apply();
    assert!(
        out.flat().contains("not yet INSYNC"),
        "the apply warns that the wait ran out:\n{}",
        out.all()
    );
    let record = "tandem_route53_failover_record.r[0]";
    assert_eq!(tf.resource(record)["change_status"], "PENDING");
    let name = format!("r0.{zone_name}");
    let written = lane.change_actions(&name);
    assert_eq!(written, ["CREATE", "CREATE"], "both halves, once");

    tf.assert_plan_shows("pending change", &["change_status", "update in-place"]);
    let t0 = Instant::now();
    next_apply_resumes(&tf, &lane, record, &name, &written);
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    tf.destroy();
}

/// Ctrl-C while the provider waits for INSYNC: Terraform stops within
/// seconds (the wait is abandoned, not sat out), the pair is in state as
/// PENDING because its records are written, and the next apply resumes
/// the same change instead of writing the records again (which Route 53
/// would refuse: CREATE of an existing set).
#[test]
fn an_insync_wait_interrupted_by_ctrl_c_resumes_at_the_next_apply() {
    skip_unless_acc!();
    let lane = own_lane(StrictConfig::default().change_pending(Duration::from_secs(15)));
    let zone_name = format!("ctrlc{}.tandem-test", unique_label("s"));
    let zone = create_zone(&lane, &zone_name);
    let tf = TfDir::new().with_provider(lane.provider_block());
    tf.config(&pairs_config(&zone, &zone_name, 1, ""));
    let name = format!("r0.{zone_name}");
    let mut apply = tf.spawn(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lane.change_actions(&name).is_empty() {
        assert!(Instant::now() < deadline, "the apply never wrote the pair");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Into the wait: the first GetChange is seconds away.
    std::thread::sleep(Duration::from_millis(500));
    let interrupted = Instant::now();
    apply.interrupt();
    let out = apply.wait(Duration::from_secs(10));
    let took = interrupted.elapsed();
    let out = out.unwrap_or_else(|| panic!("Terraform still running {took:?} after Ctrl-C"));
    assert!(
        out.flat().contains("not yet INSYNC"),
        "the apply warns that the wait was cut short:\n{}",
        out.all()
    );
    let record = "tandem_route53_failover_record.r[0]";
    assert_eq!(
        tf.resource(record)["change_status"],
        "PENDING",
        "the written pair is in state:\n{}",
        out.all()
    );
    let written = lane.change_actions(&name);
    assert_eq!(written, ["CREATE", "CREATE"], "both halves, once");

    next_apply_resumes(&tf, &lane, record, &name, &written);
    tf.destroy();
}

/// A destroy sends exactly what state says; when the records changed
/// since (here with `-refresh=false`), Route 53 refuses that batch and the
/// destroy lists the name and deletes what is there instead.
#[test]
fn a_destroy_whose_state_is_stale_deletes_what_exists() {
    skip_unless_acc!();
    let lane = own_lane(StrictConfig::default());
    let zone_name = format!("stale{}.tandem-test", unique_label("s"));
    let zone = create_zone(&lane, &zone_name);
    let tf = TfDir::new().with_provider(lane.provider_block());
    tf.config(&pairs_config(&zone, &zone_name, 1, ""));
    tf.apply();
    let name = format!("r0.{zone_name}");
    let mut secondary = a_record(&name, "198.51.100.9");
    secondary.set_identifier = Some(format!("{name}-secondary"));
    secondary.failover = Some(aws_sdk_route53::types::ResourceRecordSetFailover::Secondary);
    secondary.ttl = Some(60);
    change(
        &lane,
        &zone,
        vec![Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(secondary)
            .build()
            .expect("change")],
    );
    let before = lane.route53_calls();
    tf.ok(&[
        "destroy",
        "-auto-approve",
        "-no-color",
        "-input=false",
        "-refresh=false",
    ]);
    let calls = calls_since(&before, &lane);
    assert_eq!(
        calls.get("ChangeResourceRecordSets").copied(),
        Some(2),
        "the batch from state, refused, then the one from the listing: {calls:?}"
    );
    assert_eq!(
        calls.get("ListResourceRecordSets").copied(),
        Some(1),
        "{calls:?}"
    );
    let left = block_on(
        sdk::route53(&lane.endpoint())
            .list_resource_record_sets()
            .hosted_zone_id(&zone)
            .send(),
    )
    .expect("ListResourceRecordSets");
    assert!(
        left.resource_record_sets()
            .iter()
            .all(|s| !s.name().starts_with("r0.")),
        "{left:?}"
    );
}

// ---------------------------------------------------------------- benchmark

/// Failover pairs (and health checks) of the benchmark.
const BENCH_PAIRS: usize = 100;
/// Other record sets in the benchmark's zone, which every listing pages through.
const BENCH_OTHER_RECORDS: usize = 1_000;

/// `docs/benchmarks.md`, "Route 53 at scale": 100 failover pairs and 100
/// health checks in a zone that also holds 1,000 other record sets, on a
/// strict lane at 5 requests per second with changes PENDING for 2 s.
/// Apply, plan with no changes and destroy, each with its wall time and
/// Route 53 calls by operation. `TANDEM_PROVIDER_DIR` picks the provider
/// build, so the same test measures another build (e.g. main's);
/// `TANDEM_BENCH_ROUTE53_RATE` sets the lane's rate (0: unlimited, to count
/// the calls of a build that fails at 5 per second),
/// `TANDEM_BENCH_PARALLELISM` Terraform's `-parallelism` (default 10) and
/// `TANDEM_BENCH_PLANS` how many plans run between apply and destroy
/// (default 1): which pages a plan lists depends on the order Terraform
/// issues its reads in, so the count is a distribution.
#[test]
#[ignore = "benchmark: several minutes; run explicitly"]
fn bench_route53_at_scale() {
    skip_unless_acc!();
    let rate = std::env::var("TANDEM_BENCH_ROUTE53_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(tandem_acceptance::strict::ROUTE53_REQUESTS_PER_SECOND);
    let lane = own_lane(StrictConfig::default().route53_rate(rate));
    let zone_name = format!("bench{}.tandem-test", unique_label("s"));
    let zone = create_zone(&lane, &zone_name);
    add_others(&lane, &zone, &zone_name, BENCH_OTHER_RECORDS);
    let tf = TfDir::new().with_provider(lane.provider_block());
    tf.config(&pairs_config(&zone, &zone_name, BENCH_PAIRS, ""));
    let throttled_before = lane.route53_throttled();
    let mut rows = Vec::new();
    let parallelism = format!(
        "-parallelism={}",
        std::env::var("TANDEM_BENCH_PARALLELISM").unwrap_or_else(|_| "10".into())
    );
    let mut step = |what: &str, args: &[&str], expect: i32| {
        let before = lane.route53_calls();
        let t0 = Instant::now();
        let out = tf.run(&[args, &[parallelism.as_str()]].concat());
        let secs = t0.elapsed().as_secs_f64();
        // Another build may fail (e.g. throttled); the table says so.
        let result = if out.code == expect {
            "ok".to_string()
        } else {
            eprintln!("{what} failed:\n{}", out.all());
            format!("failed (exit {})", out.code)
        };
        let calls = calls_since(&before, &lane);
        let n = total(&calls);
        // What the rate itself allows: Route 53 answers 5 requests a second.
        let floor = n as f64 / 5.0;
        let by_op = calls
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let throttling = out.all().contains("Throttling") || out.all().contains("Rate exceeded");
        rows.push(format!(
            "| {what} | {result} | {secs:.1} s | {n} | {floor:.1} s | {by_op} | {} |",
            if throttling { "yes" } else { "no" }
        ));
    };
    step(
        "apply (create)",
        &["apply", "-auto-approve", "-no-color", "-input=false"],
        0,
    );
    let plans: usize = std::env::var("TANDEM_BENCH_PLANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for k in 1..=plans {
        step(
            &if plans == 1 {
                "plan (no changes)".to_string()
            } else {
                format!("plan (no changes) {k}/{plans}")
            },
            &["plan", "-no-color", "-input=false", "-detailed-exitcode"],
            0,
        );
    }
    step(
        "destroy",
        &["destroy", "-auto-approve", "-no-color", "-input=false"],
        0,
    );
    println!("| Step | Result | Wall time | Route 53 requests | Floor at 5/s | Requests by operation | Throttling reached Terraform |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\nThrottled by the lane during the three steps: {}",
        lane.route53_throttled() - throttled_before
    );
}
