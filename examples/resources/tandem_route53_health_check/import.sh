# Import a health check by its ID.
terraform import tandem_route53_health_check.eu abcdef11-2222-3333-4444-555555fedcba
