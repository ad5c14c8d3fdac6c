# Health checks plus one atomic failover record set for a single name.
locals {
  sides = { primary = var.primary, secondary = var.secondary }
  # Only sides that asked for a health check get one.
  checks       = { for side, s in local.sides : side => s.health_check if s.health_check != null }
  uses_records = var.primary.records != null || var.secondary.records != null
}

resource "tandem_route53_health_check" "this" {
  for_each = local.checks

  type              = each.value.type
  fqdn              = each.value.fqdn
  ip_address        = each.value.ip_address
  port              = each.value.port
  resource_path     = contains(["TCP"], each.value.type) ? null : each.value.resource_path
  search_string     = each.value.search_string
  failure_threshold = each.value.failure_threshold
  request_interval  = each.value.request_interval
  regions           = each.value.regions

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "tandem_route53_failover_record" "this" {
  zone_id = var.zone_id
  name    = var.name
  type    = var.type
  ttl     = local.uses_records ? var.ttl : null

  primary {
    records         = var.primary.records
    set_identifier  = var.primary.set_identifier
    health_check_id = try(tandem_route53_health_check.this["primary"].id, null)

    dynamic "alias" {
      for_each = var.primary.alias == null ? [] : [var.primary.alias]
      content {
        name                   = alias.value.name
        zone_id                = alias.value.zone_id
        evaluate_target_health = alias.value.evaluate_target_health
      }
    }
  }

  secondary {
    records         = var.secondary.records
    set_identifier  = var.secondary.set_identifier
    health_check_id = try(tandem_route53_health_check.this["secondary"].id, null)

    dynamic "alias" {
      for_each = var.secondary.alias == null ? [] : [var.secondary.alias]
      content {
        name                   = alias.value.name
        zone_id                = alias.value.zone_id
        evaluate_target_health = alias.value.evaluate_target_health
      }
    }
  }
}
