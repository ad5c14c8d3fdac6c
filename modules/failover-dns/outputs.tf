output "name" {
  description = "The failover name as managed (normalised: lower case, no trailing dot)."
  value       = tandem_route53_failover_record.this.name
}

output "record_id" {
  description = "ID of the failover record set pair (`ZONEID/name/TYPE`), usable for import."
  value       = tandem_route53_failover_record.this.id
}

output "health_check_ids" {
  description = "Health check IDs by side (`primary`, `secondary`), for alarms and dashboards."
  value       = { for side, hc in tandem_route53_health_check.this : side => hc.id }
}
