# Import a published fleet config by bucket/key (append @region when the
# bucket is not in the provider's default region).
terraform import tandem_proxy_fleet.assets example-fleet-config/fleets/assets.json@eu-west-1
