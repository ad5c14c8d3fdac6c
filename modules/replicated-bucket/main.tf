# A bucket pair in two regions, versioned, with one- or two-way replication.
# Replication resources reference the versioning of both sides, so
# Terraform enables versioning first and destroys replication first.
locals {
  sides = { primary = var.primary, secondary = var.secondary }
  # Replication directions: source side => destination side.
  directions = merge(
    { primary = "secondary" },
    var.two_way ? { secondary = "primary" } : {},
  )
}

resource "tandem_s3_bucket" "this" {
  for_each = local.sides

  bucket        = each.value.bucket
  region        = each.value.region
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { role = each.key })
}

resource "tandem_s3_bucket_versioning" "this" {
  for_each = local.sides

  bucket = tandem_s3_bucket.this[each.key].bucket
  region = tandem_s3_bucket.this[each.key].region
  status = "Enabled"
}

resource "tandem_s3_bucket_replication" "this" {
  for_each = local.directions

  bucket = tandem_s3_bucket_versioning.this[each.key].bucket
  region = tandem_s3_bucket_versioning.this[each.key].region
  role   = var.replication_role_arn

  rule {
    id                        = "to-${each.value}"
    priority                  = 1
    delete_marker_replication = var.replicate_delete_markers

    destination {
      bucket        = tandem_s3_bucket.this[each.value].arn
      region        = tandem_s3_bucket_versioning.this[each.value].region
      storage_class = var.replica_storage_class
    }
  }
}
