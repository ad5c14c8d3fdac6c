# Import a hosted zone by its ID.
terraform import tandem_route53_zone.main Z0123456789ABCDEFGHIJ
