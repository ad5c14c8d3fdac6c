//! The S3 rules of the strict lane (see the table in the module above):
//! home regions, CreateBucket of an existing name, another account's
//! buckets, replication prerequisites, versioning read lag and refused
//! deletes. Path-style addressing: `/bucket` and `/bucket/key`.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::xml::{self, escape, s3_error, S3_NS};
use super::{Bucket, Refusal, Reply, Req, State};

/// What S3 calls the region of buckets created without a constraint.
const US_EAST_1: &str = "us-east-1";

/// Characters left as they are in an object key's path, like the SDKs do.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The S3 operations the lane judges; everything else is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetLocation,
    GetVersioning,
    PutVersioning,
    PutReplication,
    DeleteObjects,
    DeleteObject,
    Other,
}

fn classify(req: &Req, has_key: bool) -> Op {
    let m = &req.method;
    if has_key {
        return if *m == Method::DELETE {
            Op::DeleteObject
        } else {
            Op::Other
        };
    }
    let sub = |p: &str| req.has_param(p);
    match *m {
        Method::PUT if sub("versioning") => Op::PutVersioning,
        Method::PUT if sub("replication") => Op::PutReplication,
        Method::PUT if req.query.is_empty() => Op::CreateBucket,
        Method::GET if sub("versioning") => Op::GetVersioning,
        Method::GET if sub("location") => Op::GetLocation,
        Method::POST if sub("delete") => Op::DeleteObjects,
        Method::HEAD if req.query.is_empty() => Op::HeadBucket,
        Method::DELETE if req.query.is_empty() => Op::DeleteBucket,
        _ => Op::Other,
    }
}

/// `/bucket/key` into the bucket and the decoded key, if any.
fn split(path: &str) -> Option<(String, Option<String>)> {
    let p = path.strip_prefix('/')?;
    let (bucket, key) = match p.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b, Some(k)),
        Some((b, _)) => (b, None),
        None => (p, None),
    };
    if bucket.is_empty() {
        return None;
    }
    let key = key.map(|k| {
        percent_encoding::percent_decode_str(k)
            .decode_utf8_lossy()
            .into_owned()
    });
    Some((bucket.to_string(), key))
}

pub(super) async fn handle(state: &State, req: &Req) -> Reply {
    let Some((bucket, key)) = split(&req.path) else {
        return state.forward(req).await;
    };
    let op = classify(req, key.is_some());
    let signed_for = req
        .scope
        .as_ref()
        .map(|s| s.region.clone())
        .unwrap_or_default();
    if op == Op::CreateBucket {
        return create_bucket(state, req, &bucket, &signed_for).await;
    }
    let Some(b) = state.lock().buckets.get(&bucket).cloned() else {
        // Not created through the lane: nothing to judge it by.
        return state.forward(req).await;
    };
    let head = req.method == Method::HEAD;
    if op != Op::GetLocation && signed_for != b.region {
        return redirect(&bucket, &b.region, head);
    }
    if req.account != b.account {
        let body = if head {
            String::new()
        } else {
            s3_error("AccessDenied", "Access Denied", "")
        };
        return Reply::xml(StatusCode::FORBIDDEN, body)
            .with_header("x-amz-bucket-region", &b.region);
    }
    match op {
        Op::HeadBucket => state
            .forward(req)
            .await
            .with_header("x-amz-bucket-region", &b.region),
        Op::GetLocation => location(&b.region),
        Op::PutVersioning => put_versioning(state, req, &bucket).await,
        Op::GetVersioning => get_versioning(state, req, &b).await,
        Op::PutReplication => put_replication(state, req, &b).await,
        Op::DeleteObjects => delete_objects(state, req, &bucket).await,
        Op::DeleteObject => match refusal(state, req, &bucket, key.as_deref().unwrap_or("")) {
            Some(_) => Reply::xml(
                StatusCode::FORBIDDEN,
                s3_error("AccessDenied", "Access Denied", ""),
            ),
            None => state.forward(req).await,
        },
        Op::DeleteBucket => {
            let r = state.forward(req).await;
            if r.status.is_success() {
                state.lock().buckets.remove(&bucket);
            }
            r
        }
        Op::CreateBucket | Op::Other => state.forward(req).await,
    }
}

fn redirect(bucket: &str, region: &str, head: bool) -> Reply {
    let body = if head {
        String::new()
    } else {
        s3_error(
            "PermanentRedirect",
            "The bucket you are attempting to access must be addressed using the specified endpoint. \
             Please send all future requests to this endpoint.",
            &format!(
                "<Endpoint>s3.{region}.amazonaws.com</Endpoint><Bucket>{}</Bucket>",
                escape(bucket)
            ),
        )
    };
    Reply::xml(StatusCode::MOVED_PERMANENTLY, body).with_header("x-amz-bucket-region", region)
}

fn location(region: &str) -> Reply {
    // us-east-1 is reported as an empty constraint, as S3 does.
    let c = if region == US_EAST_1 { "" } else { region };
    Reply::xml(
        StatusCode::OK,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{S3_NS}\">{c}</LocationConstraint>"),
    )
}

async fn create_bucket(state: &State, req: &Req, bucket: &str, signed_for: &str) -> Reply {
    let constraint = xml::parse(&req.body)
        .and_then(|d| d.child_text("LocationConstraint").map(str::to_string))
        .filter(|c| !c.is_empty());
    let home = match constraint.as_deref() {
        None => US_EAST_1.to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(c) => c.to_string(),
    };
    if signed_for != US_EAST_1 && constraint.as_deref() != Some(signed_for) {
        return Reply::xml(
            StatusCode::BAD_REQUEST,
            s3_error(
                "IllegalLocationConstraintException",
                &format!(
                    "The {} location constraint is incompatible for the region specific endpoint this request was sent to.",
                    constraint.as_deref().unwrap_or("unspecified")
                ),
                "",
            ),
        );
    }
    let existing = state.lock().buckets.get(bucket).cloned();
    if let Some(b) = existing {
        if b.account != req.account {
            return Reply::xml(
                StatusCode::CONFLICT,
                s3_error(
                    "BucketAlreadyExists",
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
                    &format!("<BucketName>{}</BucketName>", escape(bucket)),
                ),
            );
        }
        if b.region == US_EAST_1 && signed_for == US_EAST_1 {
            // S3's legacy answer in us-east-1: success, nothing changes.
            return Reply::new(StatusCode::OK, "application/xml", Bytes::new())
                .with_header("location", &format!("/{bucket}"));
        }
        return Reply::xml(
            StatusCode::CONFLICT,
            s3_error(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
                &format!("<BucketName>{}</BucketName>", escape(bucket)),
            ),
        );
    }
    let r = state.forward(req).await;
    if r.status.is_success() {
        state.lock().buckets.insert(
            bucket.to_string(),
            Bucket {
                region: home,
                account: req.account.clone(),
                versioning: None,
                lag_until: None,
                lagging: None,
            },
        );
    }
    r
}

async fn put_versioning(state: &State, req: &Req, bucket: &str) -> Reply {
    let status = xml::parse(&req.body).and_then(|d| d.child_text("Status").map(str::to_string));
    let r = state.forward(req).await;
    if r.status.is_success() {
        if let Some(s) = status {
            let lag = state.config.versioning_lag;
            let mut inner = state.lock();
            if let Some(b) = inner.buckets.get_mut(bucket) {
                // Keep the oldest state still visible if writes come quickly.
                if b.lag_until.is_none_or(|t| t <= Instant::now()) {
                    b.lagging = b.versioning.clone();
                }
                b.versioning = Some(s);
                b.lag_until = Some(Instant::now() + lag);
            }
        }
    }
    r
}

fn versioning_doc(status: Option<&str>) -> String {
    let inner = status
        .map(|s| format!("<Status>{}</Status>", escape(s)))
        .unwrap_or_default();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"{S3_NS}\">{inner}</VersioningConfiguration>")
}

async fn get_versioning(state: &State, req: &Req, b: &Bucket) -> Reply {
    if b.lag_until.is_some_and(|t| Instant::now() < t) {
        return Reply::xml(StatusCode::OK, versioning_doc(b.lagging.as_deref()));
    }
    let r = state.forward(req).await;
    if !r.status.is_success() {
        return r;
    }
    // moto answers with its own root element; S3's document has
    // VersioningConfiguration, which is what SDKs parse.
    let status = xml::parse(&r.body).and_then(|d| d.child_text("Status").map(str::to_string));
    Reply::xml(StatusCode::OK, versioning_doc(status.as_deref()))
}

async fn put_replication(state: &State, req: &Req, source: &Bucket) -> Reply {
    let invalid = |m: &str| Reply::xml(StatusCode::BAD_REQUEST, s3_error("InvalidRequest", m, ""));
    if source.versioning.as_deref() != Some("Enabled") {
        return invalid(
            "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
        );
    }
    let Some(doc) = xml::parse(&req.body) else {
        return Reply::xml(
            StatusCode::BAD_REQUEST,
            s3_error(
                "MalformedXML",
                "The XML you provided was not well-formed",
                "",
            ),
        );
    };
    if let Some(why) = rule_problem(&doc) {
        return invalid(why);
    }
    for dest in doc.descendants("Destination") {
        let arn = dest.child_text("Bucket").unwrap_or_default();
        let name = arn.rsplit(":::").next().unwrap_or(arn);
        let found = state.lock().buckets.get(name).cloned();
        match found {
            None => return invalid("Destination bucket must exist."),
            Some(d) if d.versioning.as_deref() != Some("Enabled") => {
                return invalid("Destination bucket must have versioning enabled.")
            }
            Some(_) => {}
        }
    }
    state.forward(req).await
}

/// The first rule of a replication configuration S3 refuses on its own
/// terms, whatever the buckets: delete-marker replication in a rule that
/// filters on tags, SSE-KMS objects without a replica key, an owner
/// override without the destination account.
fn rule_problem(doc: &xml::Element) -> Option<&'static str> {
    for rule in doc.children_named("Rule") {
        let markers = rule
            .child("DeleteMarkerReplication")
            .and_then(|d| d.child_text("Status"))
            == Some("Enabled");
        let tagged = rule
            .child("Filter")
            .is_some_and(|f| !f.descendants("Tag").is_empty());
        if markers && tagged {
            return Some(
                "Delete marker replication is not supported if any Tag filter is specified.",
            );
        }
        let dest = rule.child("Destination");
        let sse_kms = rule
            .child("SourceSelectionCriteria")
            .and_then(|c| c.child("SseKmsEncryptedObjects"))
            .and_then(|o| o.child_text("Status"))
            == Some("Enabled");
        let replica_key = dest
            .and_then(|d| d.child("EncryptionConfiguration"))
            .and_then(|e| e.child_text("ReplicaKmsKeyID"))
            .is_some();
        if sse_kms && !replica_key {
            return Some(
                "ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present.",
            );
        }
        let translation = dest
            .and_then(|d| d.child("AccessControlTranslation"))
            .is_some();
        let account = dest.and_then(|d| d.child_text("Account")).is_some();
        if translation && !account {
            return Some(
                "Destination Account must be specified when AccessControlTranslation is specified.",
            );
        }
    }
    None
}

/// The refusal that applies to deleting this key (and version) in a
/// request, if any; governance locks give way to the bypass header.
fn refusal(state: &State, req: &Req, bucket: &str, key: &str) -> Option<Refusal> {
    let version = req.param("versionId");
    refusal_for(state, req, bucket, key, version.as_deref())
}

fn refusal_for(
    state: &State,
    req: &Req,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Option<Refusal> {
    let bypass = req
        .header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    state
        .lock()
        .refusals
        .iter()
        .filter(|r| r.bucket == bucket && r.key == key)
        .filter(|r| r.version_id.is_none() || r.version_id.as_deref() == version)
        .map(|r| r.why)
        .find(|w| !(bypass && *w == Refusal::GovernanceLock))
}

/// DeleteObjects, answered key by key like S3: each version is deleted on
/// its own (moto refuses the SDK's checksummed batch anyway), refusals and
/// moto's errors become `<Error>` entries, and Quiet leaves out successes.
async fn delete_objects(state: &State, req: &Req, bucket: &str) -> Reply {
    let Some(doc) = xml::parse(&req.body) else {
        return Reply::xml(
            StatusCode::BAD_REQUEST,
            s3_error(
                "MalformedXML",
                "The XML you provided was not well-formed",
                "",
            ),
        );
    };
    let quiet = doc.child_text("Quiet") == Some("true");
    let mut out = String::new();
    for obj in doc.children_named("Object") {
        let key = obj.child_text("Key").unwrap_or_default();
        let version = obj.child_text("VersionId").filter(|v| !v.is_empty());
        let id = format!(
            "<Key>{}</Key>{}",
            escape(key),
            version
                .map(|v| format!("<VersionId>{}</VersionId>", escape(v)))
                .unwrap_or_default()
        );
        if let Some(why) = refusal_for(state, req, bucket, key, version) {
            let message = match why {
                Refusal::AccessDenied => "Access Denied",
                Refusal::GovernanceLock | Refusal::ComplianceLock => {
                    "Access Denied because object protected by object lock."
                }
            };
            out.push_str(&format!(
                "<Error>{id}<Code>AccessDenied</Code><Message>{message}</Message></Error>"
            ));
            continue;
        }
        let mut path = format!("/{bucket}/{}", utf8_percent_encode(key, KEY));
        if let Some(v) = version {
            path.push_str(&format!(
                "?versionId={}",
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            ));
        }
        let mut headers = HeaderMap::new();
        for h in [http::header::AUTHORIZATION.as_str(), "x-amz-date"] {
            if let Some(v) = req.headers.get(h) {
                headers.insert(h, v.clone());
            }
        }
        let r = state
            .moto
            .send(Method::DELETE, &path, headers, Bytes::new(), &req.account)
            .await;
        if r.status.is_success() {
            if !quiet {
                out.push_str(&format!("<Deleted>{id}</Deleted>"));
            }
        } else {
            let e = xml::parse(&r.body);
            let code = e
                .as_ref()
                .and_then(|e| e.child_text("Code").map(str::to_string))
                .unwrap_or_else(|| "InternalError".into());
            let message = e
                .as_ref()
                .and_then(|e| e.child_text("Message").map(str::to_string))
                .unwrap_or_default();
            out.push_str(&format!(
                "<Error>{id}<Code>{}</Code><Message>{}</Message></Error>",
                escape(&code),
                escape(&message)
            ));
        }
    }
    let mut reply = Reply::xml(
        StatusCode::OK,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"{S3_NS}\">{out}</DeleteResult>"),
    );
    reply
        .headers
        .insert("x-amz-request-id", HeaderValue::from_static("strict-lane"));
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_bucket_and_decoded_key() {
        assert_eq!(split("/b"), Some(("b".into(), None)));
        assert_eq!(split("/b/"), Some(("b".into(), None)));
        assert_eq!(
            split("/b/data/a%20b.txt"),
            Some(("b".into(), Some("data/a b.txt".into())))
        );
        assert_eq!(split("/"), None);
    }

    #[test]
    fn locations_follow_s3s_legacy_spelling() {
        assert!(location("us-east-1")
            .text()
            .contains("></LocationConstraint>"));
        assert!(location("eu-west-1").text().contains(">eu-west-1<"));
        assert!(versioning_doc(None).contains("<VersioningConfiguration"));
        assert!(versioning_doc(Some("Enabled")).contains("<Status>Enabled</Status>"));
    }

    #[test]
    fn replication_rules_s3_refuses_on_their_own() {
        let doc = |rule: &str| {
            xml::parse(
                format!("<ReplicationConfiguration><Rule>{rule}</Rule></ReplicationConfiguration>")
                    .as_bytes(),
            )
            .unwrap()
        };
        let dest = "<Destination><Bucket>arn:aws:s3:::d</Bucket></Destination>";
        let markers = "<DeleteMarkerReplication><Status>Enabled</Status></DeleteMarkerReplication>";
        let tag =
            "<Filter><And><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>";
        assert!(rule_problem(&doc(&format!("{markers}{tag}{dest}")))
            .unwrap()
            .contains("Tag filter"));
        assert!(rule_problem(&doc(&format!(
            "{markers}<Filter><Prefix>a</Prefix></Filter>{dest}"
        )))
        .is_none());
        let sse = "<SourceSelectionCriteria><SseKmsEncryptedObjects><Status>Enabled</Status></SseKmsEncryptedObjects></SourceSelectionCriteria>";
        assert!(rule_problem(&doc(&format!("{sse}{dest}")))
            .unwrap()
            .contains("ReplicaKmsKeyID"));
        let owner = "<Destination><Bucket>arn:aws:s3:::d</Bucket><AccessControlTranslation><Owner>Destination</Owner></AccessControlTranslation></Destination>";
        assert!(rule_problem(&doc(owner)).unwrap().contains("Account"));
    }
}
