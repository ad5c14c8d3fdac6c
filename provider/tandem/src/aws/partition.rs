//! AWS partitions: the ARN prefix and DNS suffix of a region. Route 53 is
//! global within a partition, and S3 endpoints and ARNs follow the bucket's
//! region, so every ARN and endpoint the provider builds goes through here
//! rather than assuming `arn:aws:` and `amazonaws.com`.

/// One partition's naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// The ARN partition, e.g. `aws-cn`.
    pub id: &'static str,
    /// The domain of its service endpoints, e.g. `amazonaws.com.cn`.
    pub dns_suffix: &'static str,
}

/// The commercial partition, where every region not named below lives.
pub const AWS: Partition = Partition {
    id: "aws",
    dns_suffix: "amazonaws.com",
};

/// China (Beijing, Ningxia): `cn-north-1`, `cn-northwest-1`.
pub const AWS_CN: Partition = Partition {
    id: "aws-cn",
    dns_suffix: "amazonaws.com.cn",
};

/// AWS GovCloud (US): `us-gov-west-1`, `us-gov-east-1`. Its endpoints keep
/// the commercial domain, its ARNs do not.
pub const AWS_US_GOV: Partition = Partition {
    id: "aws-us-gov",
    dns_suffix: "amazonaws.com",
};

/// The partition a region belongs to, from the region-name prefixes AWS
/// reserves for each partition.
pub fn partition_of(region: &str) -> Partition {
    if region.starts_with("cn-") {
        AWS_CN
    } else if region.starts_with("us-gov-") {
        AWS_US_GOV
    } else {
        AWS
    }
}

impl Partition {
    /// ARN of an S3 bucket: `arn:PARTITION:s3:::NAME`.
    pub fn s3_bucket_arn(self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.id)
    }

    /// The regional S3 endpoint name of a bucket in `region` (which must be
    /// in this partition): `NAME.s3.REGION.DNS_SUFFIX`.
    pub fn s3_regional_domain(self, bucket: &str, region: &str) -> String {
        format!("{bucket}.s3.{region}.{}", self.dns_suffix)
    }

    /// ARN of a Route 53 object, e.g. `healthcheck/ID` or `hostedzone/ID`.
    pub fn route53_arn(self, resource: &str) -> String {
        format!("arn:{}:route53:::{resource}", self.id)
    }
}

/// The bucket name in an S3 bucket ARN of any partition; `None` for
/// anything else (an object ARN, another service, a bare name).
pub fn bucket_from_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    if ![AWS.id, AWS_CN.id, AWS_US_GOV.id].contains(&partition) {
        return None;
    }
    rest.strip_prefix("s3:::")
        .filter(|b| !b.is_empty() && !b.contains('/'))
}

/// What [`valid_role_arn`] accepts, for the schema's docs.
pub const ROLE_ARN: &str = "an IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/NAME`)";

/// An IAM role ARN of any partition.
pub fn valid_role_arn(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource
                    .strip_prefix("role/")
                    .is_some_and(|n| !n.is_empty()) =>
        {
            Ok(())
        }
        _ => Err("expected arn:PARTITION:iam::ACCOUNT:role/NAME".into()),
    }
}

/// What [`valid_bucket_arn`] accepts, for the schema's docs.
pub const BUCKET_ARN: &str = "an S3 bucket ARN (`arn:PARTITION:s3:::NAME`)";

/// [`bucket_from_arn`] as a schema format rule.
pub fn valid_bucket_arn(v: &str) -> Result<(), String> {
    bucket_from_arn(v)
        .map(|_| ())
        .ok_or_else(|| "expected arn:aws:s3:::NAME (or the aws-cn or aws-us-gov partition)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_names_its_arns_and_endpoints() {
        let cases = [
            (
                "eu-west-1",
                "arn:aws:s3:::b",
                "b.s3.eu-west-1.amazonaws.com",
                "arn:aws:route53:::healthcheck/h",
            ),
            (
                "cn-north-1",
                "arn:aws-cn:s3:::b",
                "b.s3.cn-north-1.amazonaws.com.cn",
                "arn:aws-cn:route53:::healthcheck/h",
            ),
            (
                "us-gov-west-1",
                "arn:aws-us-gov:s3:::b",
                "b.s3.us-gov-west-1.amazonaws.com",
                "arn:aws-us-gov:route53:::healthcheck/h",
            ),
        ];
        for (region, arn, domain, r53) in cases {
            let p = partition_of(region);
            assert_eq!(p.s3_bucket_arn("b"), arn);
            assert_eq!(p.s3_regional_domain("b", region), domain);
            assert_eq!(p.route53_arn("healthcheck/h"), r53);
            assert_eq!(bucket_from_arn(arn), Some("b"));
        }
    }

    #[test]
    fn role_arns_of_every_partition() {
        for ok in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws-cn:iam::123456789012:role/path/r",
            "arn:aws-us-gov:iam::123456789012:role/r",
        ] {
            assert!(valid_role_arn(ok).is_ok(), "{ok}");
        }
        for bad in [
            "r",
            "arn:aws:iam::12:role/r",
            "arn:aws:s3:::b",
            "arn:aws:iam::123456789012:user/u",
        ] {
            assert!(valid_role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_bucket_arns_name_buckets() {
        assert_eq!(bucket_from_arn("b"), None);
        assert_eq!(bucket_from_arn("arn:aws:s3:::b/key"), None);
        assert_eq!(bucket_from_arn("arn:aws:iam::123456789012:role/r"), None);
        assert_eq!(bucket_from_arn("arn:aws-xx:s3:::b"), None);
        assert_eq!(bucket_from_arn("arn:aws:s3:::"), None);
    }
}
