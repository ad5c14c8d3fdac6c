//! Who sent a request and for which region: the SigV4 credential scope.
//!
//! moto checks no signature, and neither does the lane: it only reads the
//! scope, `AKID/DATE/REGION/SERVICE/aws4_request`, from the Authorization
//! header (or `X-Amz-Credential` of a presigned URL), because that is what
//! real AWS routes and authorises by.

/// The credential scope of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Access key ID: the lane maps it to an account.
    pub access_key: String,
    /// Region the request was signed for.
    pub region: String,
    /// Service the request was signed for, e.g. `s3` or `route53`.
    pub service: String,
}

/// The scope of a request, from its Authorization header or query.
pub fn scope(authorization: Option<&str>, query: &str) -> Option<Scope> {
    let credential = authorization
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|c| c.split([',', ' ']).next().unwrap_or("").to_string())
        .or_else(|| {
            query.split('&').find_map(|kv| {
                let v = kv.strip_prefix("X-Amz-Credential=")?;
                Some(
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
        })?;
    let mut parts = credential.split('/');
    let access_key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    Some(Scope {
        access_key,
        region,
        service,
    })
}

/// An Authorization header with this scope, for the lane's own requests to
/// moto (which reads only the access key and service from it).
pub fn authorization(access_key: &str, region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20250101/{region}/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0000"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scope_from_the_header_or_a_presigned_query() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=ab";
        assert_eq!(
            scope(Some(h), ""),
            Some(Scope {
                access_key: "AKID".into(),
                region: "eu-west-1".into(),
                service: "s3".into()
            })
        );
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=K%2F20250101%2Fus-west-2%2Froute53%2Faws4_request";
        let s = scope(None, q).unwrap();
        assert_eq!(
            (s.region.as_str(), s.service.as_str()),
            ("us-west-2", "route53")
        );
        assert_eq!(scope(None, "versioning"), None);
        let own = authorization("K", "us-east-1", "route53");
        assert_eq!(scope(Some(&own), "").unwrap().service, "route53");
    }
}
