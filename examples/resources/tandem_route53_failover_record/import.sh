# Import a failover pair by ZONEID/name/TYPE (slashes, so names with `_` work).
terraform import tandem_route53_failover_record.api Z0123456789ABCDEFGHIJ/api.example.com/A
