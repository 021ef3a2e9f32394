output "elastic_ip" {
  description = "The egress address of this pair (allowlist it at third parties)"
  value       = aws_eip.service.public_ip
}

output "service_private_ip" {
  value = local.service_ip
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
