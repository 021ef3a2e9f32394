output "elastic_ip" {
  description = "The first egress address of this pair (allowlist all of elastic_ips at third parties)"
  value       = aws_eip.service[0].public_ip
}

output "elastic_ips" {
  description = "Every egress address of this pair (allowlist them all at third parties)"
  value       = aws_eip.service[*].public_ip
}

output "service_private_ip" {
  value = local.service_ips[0]
}

output "service_private_ips" {
  description = "The service addresses (the data ENIs' secondary private IPs), in the order of elastic_ips"
  value       = local.service_ips
}

output "instance_a" {
  value = aws_instance.a.id
}

output "instance_b" {
  value = aws_instance.b.id
}

output "instance_ids" {
  description = "Both instances, for fallback_for_instance_ids of the pair that rescues this one"
  value       = [aws_instance.a.id, aws_instance.b.id]
}

output "fallback_tag_command" {
  description = "Run once - tags the rescued tables so this pair's role may replace their routes"
  value       = local.has_fallback ? "aws ec2 create-tags --resources ${join(" ", var.fallback_for_route_table_ids)} --tags Key=eipgate:fallback-by,Value=${var.pair_name}" : null
}

output "role_arn" {
  value = aws_iam_role.this.arn
}
