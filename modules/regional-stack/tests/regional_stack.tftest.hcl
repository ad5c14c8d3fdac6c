# Offline: every provider call is mocked (mock_provider), so this checks the
# module's own wiring (replication rules, tags, the fleet's config key and
# routes, the input validation), not AWS. The real thing is applied and
# destroyed by examples/two-region in acceptance-tests/tests/two_region.rs.

# make test passes the emulator's address to every module's tests; these
# do not use it.
variable "aws_endpoint" {
  type    = string
  default = null
}

mock_provider "tandem" {}

variables {
  name                 = "assets"
  region               = "eu-west-1"
  bucket               = "assets-eu"
  replication_role_arn = "arn:aws:iam::123456789012:role/replication"
  config_bucket        = "assets-config"
  config_region        = "eu-west-1"
  tags                 = { team = "storage" }
}

run "replicates_to_each_peer_in_failover_order" {
  variables {
    peers = [
      { bucket = "assets-us", region = "us-east-1" },
      { bucket = "assets-ap", region = "ap-southeast-2", endpoint = "http://127.0.0.1:9000" },
    ]
  }

  assert {
    condition     = [for r in tandem_s3_bucket_replication.to_peers[0].rule : r.destination.bucket] == ["arn:aws:s3:::assets-us", "arn:aws:s3:::assets-ap"]
    error_message = "one rule per peer, in the order given"
  }

  assert {
    condition     = [for r in tandem_s3_bucket_replication.to_peers[0].rule : r.priority] == [1, 2]
    error_message = "the first peer gets priority 1"
  }

  assert {
    condition     = alltrue([for r in tandem_s3_bucket_replication.to_peers[0].rule : r.delete_marker_replication])
    error_message = "delete markers replicate by default"
  }

  assert {
    condition     = tandem_s3_bucket_replication.to_peers[0].role == var.replication_role_arn
    error_message = "replication uses the given role"
  }

  assert {
    condition     = tandem_s3_bucket.data.tags == tomap({ team = "storage", stack = "assets", region = "eu-west-1" })
    error_message = "the bucket carries the caller's tags plus stack and region"
  }

  assert {
    condition     = output.config_url == "s3://assets-config/fleets/assets-eu-west-1.json"
    error_message = "each region's fleet publishes under its own key"
  }
}

run "no_peers_no_replication" {
  assert {
    condition     = length(tandem_s3_bucket_replication.to_peers) == 0
    error_message = "a stack without peers has no replication configuration"
  }

  assert {
    condition     = tandem_s3_bucket_versioning.data.status == "Enabled"
    error_message = "the data bucket is versioned even without peers"
  }
}

run "delete_markers_can_stay_local" {
  variables {
    peers                    = [{ bucket = "assets-us", region = "us-east-1" }]
    replicate_delete_markers = false
  }

  assert {
    condition     = !tandem_s3_bucket_replication.to_peers[0].rule[0].delete_marker_replication
    error_message = "replicate_delete_markers = false reaches the rule"
  }
}

run "a_peer_in_the_same_region_is_refused" {
  command = plan

  variables {
    peers = [{ bucket = "assets-eu-2", region = "eu-west-1" }]
  }

  expect_failures = [var.peers]
}

run "a_bad_name_is_refused" {
  command = plan

  variables {
    name = "Assets_EU"
  }

  expect_failures = [var.name]
}
