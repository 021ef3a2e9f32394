# eipgate HA pair (one shard of one Availability Zone), the resources of
# ami/cloudformation/eipgate-pair.yaml: two NAT instances with a management ENI and a data ENI
# each, the service addresses (1 to 8 secondary private IPs of the data ENI) with their Elastic IPs, the
# default routes of this shard's private route tables, security groups, the least-privilege
# instance role, the HA secret, EC2 auto-recovery alarms and the CloudWatch alarms (alarms.tf).
#
# Unlike CloudFormation, Terraform compares what it manages with what is there at every plan.
# eipgate-control changes three things on failover: the routes' target, the data ENIs' secondary
# IPs (A's move to B) and so the EIP associations' ENI. Those attributes are ignore_changes, or
# the next apply after a failover would move traffic back to the standby.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  public_mgmt  = var.management_access == "PublicIp"
  ipv6_mgmt    = var.management_access == "Ipv6"
  bpa_excluded = var.block_public_access_exclusion != "none"
  has_key      = var.key_name != ""
  has_admin    = var.admin_cidr != ""
  has_fallback = length(var.fallback_for_route_table_ids) > 0
  metrics      = var.cloudwatch_metrics != "off"
  has_topic    = var.alarm_topic_arn != ""
  # translation logs shipped to CloudWatch Logs (an existing group)
  translation_logs = var.translation_log_group != ""
  logs_arn_prefix  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  # Service addresses at most where the data ENI holds fewer than 10 IPv4 addresses (the
  # template's Rules; ami/OPERATOR.md, "Service IP limits"). Other types: 8.
  service_address_limits = { "t4g.nano" = 1, "t4g.micro" = 1, "t4g.small" = 3, "c6gn.medium" = 3, "c7gn.medium" = 3, "t4g.medium" = 5 }
  # The template's Rules FallbackComplete: all three fallback lists or none.
  fallback_complete = (length(var.fallback_for_route_table_ids) > 0) == (length(var.fallback_for_instance_ids) > 0) && (length(var.fallback_for_route_table_ids) > 0) == (length(var.fallback_for_inside_prefixes) > 0)
  arn_prefix        = "arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"

  # The service addresses that carry the EIPs: the secondary private IPs of the data ENIs. They
  # are created on A's and move to B's on failover (so looked up on both: after a failover A has
  # none, and a plan that read only A's would fail). Sorted, so that EIP n stays with address n
  # whichever ENI holds them.
  service_ips = sort(concat(
    tolist(setsubtract(aws_network_interface.data_a.private_ips, [aws_network_interface.data_a.private_ip])),
    tolist(setsubtract(aws_network_interface.data_b.private_ips, [aws_network_interface.data_b.private_ip])),
  ))

  # User data per instance (eipgate-render-config, ami/README.md); same keys as the template's.
  user_data = {
    a = {
      eipgate = {
        version         = 1
        pair            = var.pair_name
        priority        = 150
        peer_address    = aws_network_interface.mgmt_b.private_ip
        peer_eni        = aws_network_interface.data_b.id
        service_ips     = local.service_ips
        inside_prefixes = var.inside_prefixes
        route_table_ids = var.private_route_table_ids
        ha_secret_arn   = aws_secretsmanager_secret.ha.arn
        data_path       = var.data_path
      }
    }
    b = {
      eipgate = {
        version         = 1
        pair            = var.pair_name
        priority        = 100
        peer_address    = aws_network_interface.mgmt_a.private_ip
        peer_eni        = aws_network_interface.data_a.id
        service_ips     = local.service_ips
        inside_prefixes = var.inside_prefixes
        route_table_ids = var.private_route_table_ids
        ha_secret_arn   = aws_secretsmanager_secret.ha.arn
        data_path       = var.data_path
      }
    }
  }

  # Instance tags: eipgate:cloudwatch and the cross-AZ fallback (read by eipgate-render-config
  # from IMDS). Tags, not user data or the launch template: changing them replaces no instance.
  # eipgate:allocation-ids: the EIPs, paired with user data's service_ips by index.
  instance_tags = {
    a = { Name = "eipgate-${var.pair_name}-a", "eipgate:cloudwatch" = var.cloudwatch_metrics, "eipgate:management" = var.management_access, "eipgate:allocation-ids" = join(",", aws_eip.service[*].allocation_id) }
    b = { Name = "eipgate-${var.pair_name}-b", "eipgate:cloudwatch" = var.cloudwatch_metrics, "eipgate:management" = var.management_access, "eipgate:allocation-ids" = join(",", aws_eip.service[*].allocation_id) }
  }
  translation_log_tag_values = {
    "eipgate:translation-log-group" = var.translation_log_group
  }
  translation_log_tags = { for k, v in local.translation_log_tag_values : k => v if local.translation_logs }
  fallback_tag_values = {
    "eipgate:fallback-for-route-tables"    = join(",", var.fallback_for_route_table_ids)
    "eipgate:fallback-for-instances"       = join(",", var.fallback_for_instance_ids)
    "eipgate:fallback-for-inside-prefixes" = join(",", var.fallback_for_inside_prefixes)
    "eipgate:fallback-target"              = var.fallback_target
    "eipgate:fallback-after"               = var.fallback_after
  }
  fallback_tags = { for k, v in local.fallback_tag_values : k => v if local.has_fallback }
}

# --- HA secret (heartbeat and sync HMAC key), fetched at boot by eipgate-render-config ---------
resource "aws_secretsmanager_secret" "ha" {
  name        = "eipgate/${var.pair_name}/ha-key"
  description = "eipgate ${var.pair_name} HA shared secret"
  tags        = { "eipgate:pair" = var.pair_name }
}

# CloudFormation's GenerateSecretString; here the value is in the Terraform state (keep the state
# encrypted, as for any module that creates a secret).
resource "random_password" "ha" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret_version" "ha" {
  secret_id     = aws_secretsmanager_secret.ha.id
  secret_string = random_password.ha.result
}

# --- IAM: the least privilege eipgate-control needs (ami/iam/eipgate-control-policy.json) ------
data "aws_iam_policy_document" "assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "control" {
  statement {
    sid       = "Describe"
    effect    = "Allow"
    actions   = ["ec2:DescribeRouteTables", "ec2:DescribeAddresses", "ec2:DescribeNetworkInterfaces", "ec2:DescribeInstanceStatus"]
    resources = ["*"]
  }
  statement {
    sid       = "ReplaceRoutesOfThisPair"
    effect    = "Allow"
    actions   = ["ec2:ReplaceRoute"]
    resources = ["${local.arn_prefix}:route-table/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/eipgate:pair"
      values   = [var.pair_name]
    }
  }
  # The liveness lease: the active rewrites eipgate:lease on its own tables.
  statement {
    sid       = "LeaseOnTablesOfThisPair"
    effect    = "Allow"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.arn_prefix}:route-table/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/eipgate:pair"
      values   = [var.pair_name]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["eipgate:lease"]
    }
  }
  statement {
    sid       = "MoveServiceIpWithinThisPair"
    effect    = "Allow"
    actions   = ["ec2:AssignPrivateIpAddresses"]
    resources = ["${local.arn_prefix}:network-interface/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/eipgate:pair"
      values   = [var.pair_name]
    }
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/eipgate:role"
      values   = ["data"]
    }
  }
  statement {
    sid       = "HaSecret"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.ha.arn]
  }
  # Cross-AZ fallback only (ami/iam/eipgate-control-policy-fallback.json).
  dynamic "statement" {
    for_each = local.has_fallback ? [1] : []
    content {
      sid       = "ReplaceRoutesOfTablesThisPairRescues"
      effect    = "Allow"
      actions   = ["ec2:ReplaceRoute"]
      resources = ["${local.arn_prefix}:route-table/*"]
      condition {
        test     = "StringEquals"
        variable = "ec2:ResourceTag/eipgate:fallback-by"
        values   = [var.pair_name]
      }
    }
  }
  # Translation logs (cloudwatch_logs:): CreateLogStream on the group, PutLogEvents on its streams.
  dynamic "statement" {
    for_each = local.translation_logs ? [1] : []
    content {
      sid       = "ShipTranslationLogs"
      effect    = "Allow"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      resources = ["${local.logs_arn_prefix}:log-group:${var.translation_log_group}", "${local.logs_arn_prefix}:log-group:${var.translation_log_group}:log-stream:*"]
    }
  }
  # CloudWatch metrics: PutMetricData has no resource-level permissions; namespace eipgate only.
  dynamic "statement" {
    for_each = local.metrics ? [1] : []
    content {
      sid       = "PutMetricDataEipgateNamespace"
      effect    = "Allow"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = ["eipgate"]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  # IAM allows name prefixes of up to 38 characters (pair_name has up to 31).
  name_prefix        = substr("eipgate-${var.pair_name}-", 0, 38)
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = { "eipgate:pair" = var.pair_name }
}

resource "aws_iam_role_policy" "control" {
  name   = "eipgate-control"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.control.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count      = var.enable_ssm ? 1 : 0
  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = substr("eipgate-${var.pair_name}-", 0, 38)
  role        = aws_iam_role.this.name
}

# --- security groups (rules as separate resources; Terraform removes the default egress rule) --
resource "aws_security_group" "data" {
  name_prefix = "eipgate-${var.pair_name}-data-"
  description = "eipgate ${var.pair_name} data ENIs (NAT traffic)"
  vpc_id      = var.vpc_id
  tags        = { Name = "eipgate-${var.pair_name}-data" }
}

resource "aws_vpc_security_group_egress_rule" "data_all" {
  security_group_id = aws_security_group.data.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  description       = "translated traffic and replies to the private subnets"
}

# Inside hosts -> NAT: one rule per private subnet (tracked connections) ...
resource "aws_vpc_security_group_ingress_rule" "data_inside" {
  for_each          = toset(var.inside_prefixes)
  security_group_id = aws_security_group.data.id
  ip_protocol       = "-1"
  cidr_ipv4         = each.value
  description       = "private subnet"
}

# ... and the rescued AZ's private subnets (cross-AZ fallback) ...
resource "aws_vpc_security_group_ingress_rule" "data_fallback" {
  for_each          = toset(var.fallback_for_inside_prefixes)
  security_group_id = aws_security_group.data.id
  ip_protocol       = "-1"
  cidr_ipv4         = each.value
  description       = "rescued private subnet (cross-AZ fallback)"
}

# ... or everything (untracked_data_path): no conntrack_allowance limit; the dataplane drops
# unsolicited outside->inside traffic itself.
resource "aws_vpc_security_group_ingress_rule" "data_untracked" {
  count             = var.untracked_data_path ? 1 : 0
  security_group_id = aws_security_group.data.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  description       = "all (untracked connections)"
}

resource "aws_security_group" "mgmt" {
  name_prefix = "eipgate-${var.pair_name}-mgmt-"
  description = "eipgate ${var.pair_name} management ENIs (HA heartbeats, AWS APIs)"
  vpc_id      = var.vpc_id
  tags        = { Name = "eipgate-${var.pair_name}-mgmt" }
}

resource "aws_vpc_security_group_egress_rule" "mgmt_https" {
  security_group_id = aws_security_group.mgmt.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
  description       = "EC2 / Secrets Manager / SSM APIs"
}

resource "aws_vpc_security_group_egress_rule" "mgmt_http" {
  security_group_id = aws_security_group.mgmt.id
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
  description       = "Debian security updates"
}

resource "aws_vpc_security_group_egress_rule" "mgmt_ntp" {
  security_group_id = aws_security_group.mgmt.id
  ip_protocol       = "udp"
  from_port         = 123
  to_port           = 123
  cidr_ipv4         = "169.254.169.123/32"
  description       = "Amazon Time Sync"
}

# management_access = "Ipv6": the dual-stack endpoints and the Debian mirrors over the egress-only
# internet gateway
resource "aws_vpc_security_group_egress_rule" "mgmt_https6" {
  count             = local.ipv6_mgmt ? 1 : 0
  security_group_id = aws_security_group.mgmt.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv6         = "::/0"
  description       = "EC2 / Secrets Manager dual-stack APIs over IPv6"
}

resource "aws_vpc_security_group_egress_rule" "mgmt_http6" {
  count             = local.ipv6_mgmt ? 1 : 0
  security_group_id = aws_security_group.mgmt.id
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv6         = "::/0"
  description       = "Debian security updates over IPv6"
}

resource "aws_vpc_security_group_ingress_rule" "mgmt_heartbeat_in" {
  security_group_id            = aws_security_group.mgmt.id
  ip_protocol                  = "udp"
  from_port                    = 7410
  to_port                      = 7410
  referenced_security_group_id = aws_security_group.mgmt.id
  description                  = "HA heartbeats, flow sync, handover (HMAC-SHA256 authenticated)"
}

resource "aws_vpc_security_group_egress_rule" "mgmt_heartbeat_out" {
  security_group_id            = aws_security_group.mgmt.id
  ip_protocol                  = "udp"
  from_port                    = 7410
  to_port                      = 7410
  referenced_security_group_id = aws_security_group.mgmt.id
  description                  = "HA heartbeats to the peer"
}

resource "aws_vpc_security_group_ingress_rule" "mgmt_ssh" {
  count             = local.has_admin ? 1 : 0
  security_group_id = aws_security_group.mgmt.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

# --- ENIs and addresses --------------------------------------------------------------------------
resource "aws_network_interface" "mgmt_a" {
  subnet_id          = var.public_subnet_id
  security_groups    = [aws_security_group.mgmt.id]
  ipv6_address_count = local.ipv6_mgmt ? 1 : null # the API traffic's source address
  description        = "eipgate ${var.pair_name} A management"
  tags               = { "eipgate:pair" = var.pair_name, "eipgate:role" = "mgmt" }
}

resource "aws_network_interface" "mgmt_b" {
  subnet_id          = var.public_subnet_id
  security_groups    = [aws_security_group.mgmt.id]
  ipv6_address_count = local.ipv6_mgmt ? 1 : null
  description        = "eipgate ${var.pair_name} B management"
  tags               = { "eipgate:pair" = var.pair_name, "eipgate:role" = "mgmt" }
}

resource "aws_network_interface" "data_a" {
  subnet_id         = var.public_subnet_id
  security_groups   = [aws_security_group.data.id]
  source_dest_check = false
  private_ips_count = var.service_address_count # the service addresses; they move to B on failover
  description       = "eipgate ${var.pair_name} A data"
  tags              = { "eipgate:pair" = var.pair_name, "eipgate:role" = "data" }
  lifecycle {
    ignore_changes = [private_ips, private_ips_count, private_ip_list, private_ip_list_enabled]
    precondition {
      condition     = var.service_address_count <= lookup(local.service_address_limits, var.instance_type, 8)
      error_message = "service_address_count: more than the instance type's data ENI holds besides its primary IP (ami/OPERATOR.md, \"Service IP limits\")."
    }
  }
}

resource "aws_network_interface" "data_b" {
  subnet_id         = var.public_subnet_id
  security_groups   = [aws_security_group.data.id]
  source_dest_check = false
  description       = "eipgate ${var.pair_name} B data"
  tags              = { "eipgate:pair" = var.pair_name, "eipgate:role" = "data" }
  lifecycle {
    ignore_changes = [private_ips, private_ips_count, private_ip_list, private_ip_list_enabled]
  }
}

# One EIP per service address (the template's ServiceEip, ServiceEip2..8).
resource "aws_eip" "service" {
  count  = var.service_address_count
  domain = "vpc"
  tags   = { Name = "eipgate-${var.pair_name}${count.index == 0 ? "" : "-${count.index + 1}"}", "eipgate:pair" = var.pair_name }
}

# Associated with the secondary IP, not with an ENI: it follows the IP when eipgate-control
# moves it (AssignPrivateIpAddresses with AllowReassignment; all of a pair's IPs in one call).
resource "aws_eip_association" "service" {
  count                = var.service_address_count
  allocation_id        = aws_eip.service[count.index].allocation_id
  network_interface_id = aws_network_interface.data_a.id
  private_ip_address   = local.service_ips[count.index]
  lifecycle {
    ignore_changes = [network_interface_id]
    # The data ENIs ignore changes of their IPs (a failover moves them): a count changed after
    # creation needs the addresses assigned first (README.md, "Changing service_address_count").
    precondition {
      condition     = length(local.service_ips) == var.service_address_count
      error_message = "service_address_count differs from the secondary IPs the data ENIs hold: assign or unassign them first (iac/terraform/README.md, \"Changing service_address_count\")."
    }
  }
}

# The one-address module had these without count: keep them (and the pair's egress address).
moved {
  from = aws_eip.service
  to   = aws_eip.service[0]
}

moved {
  from = aws_eip_association.service
  to   = aws_eip_association.service[0]
}

# VPC Block Public Access blocks the service EIP's internet gateway traffic (it exempts only NAT
# gateways and egress-only gateways); Ipv6 management leaves by an egress-only gateway.
resource "aws_vpc_block_public_access_exclusion" "public_subnet" {
  count                           = local.bpa_excluded ? 1 : 0
  subnet_id                       = var.public_subnet_id
  internet_gateway_exclusion_mode = var.block_public_access_exclusion
  tags                            = { Name = "eipgate-${var.pair_name}", "eipgate:pair" = var.pair_name }
}

resource "aws_eip" "mgmt_a" {
  count  = local.public_mgmt ? 1 : 0
  domain = "vpc"
  tags   = { Name = "eipgate-${var.pair_name}-a-mgmt" }
}

resource "aws_eip_association" "mgmt_a" {
  count                = local.public_mgmt ? 1 : 0
  allocation_id        = aws_eip.mgmt_a[0].allocation_id
  network_interface_id = aws_network_interface.mgmt_a.id
}

resource "aws_eip" "mgmt_b" {
  count  = local.public_mgmt ? 1 : 0
  domain = "vpc"
  tags   = { Name = "eipgate-${var.pair_name}-b-mgmt" }
}

resource "aws_eip_association" "mgmt_b" {
  count                = local.public_mgmt ? 1 : 0
  allocation_id        = aws_eip.mgmt_b[0].allocation_id
  network_interface_id = aws_network_interface.mgmt_b.id
}

# --- instances -----------------------------------------------------------------------------------
resource "aws_launch_template" "this" {
  name_prefix   = "eipgate-${var.pair_name}-"
  image_id      = var.image_id
  instance_type = var.instance_type
  key_name      = local.has_key ? var.key_name : null
  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled" # eipgate:* tags readable by eipgate-render-config
  }
  monitoring {
    enabled = false # basic: the recovery alarms read 1-minute status checks; detailed bills ~7 metrics/instance
  }
  tag_specifications {
    resource_type = "instance"
    tags          = { "eipgate:pair" = var.pair_name }
  }
}

resource "aws_instance" "a" {
  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }
  network_interface {
    device_index         = 0
    network_interface_id = aws_network_interface.mgmt_a.id
  }
  network_interface {
    device_index         = 1
    network_interface_id = aws_network_interface.data_a.id
  }
  user_data  = jsonencode(local.user_data["a"])
  tags       = merge(local.instance_tags["a"], local.fallback_tags, local.translation_log_tags)
  depends_on = [aws_eip_association.service]
  lifecycle {
    precondition {
      condition     = local.fallback_complete
      error_message = "Cross-AZ fallback needs fallback_for_route_table_ids, fallback_for_instance_ids and fallback_for_inside_prefixes together."
    }
  }
}

resource "aws_instance" "b" {
  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }
  network_interface {
    device_index         = 0
    network_interface_id = aws_network_interface.mgmt_b.id
  }
  network_interface {
    device_index         = 1
    network_interface_id = aws_network_interface.data_b.id
  }
  user_data = jsonencode(local.user_data["b"])
  tags      = merge(local.instance_tags["b"], local.fallback_tags, local.translation_log_tags)
}

# EC2 recovers an instance whose host fails (same ENIs, same addresses).
resource "aws_cloudwatch_metric_alarm" "recover" {
  for_each            = { A = aws_instance.a.id, B = aws_instance.b.id }
  alarm_name          = "eipgate-${var.pair_name}-recover-${lower(each.key)}"
  alarm_description   = "eipgate ${var.pair_name} ${each.key} - recover on system status check failure"
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed_System"
  dimensions          = { InstanceId = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  alarm_actions       = ["arn:${data.aws_partition.current.partition}:automate:${data.aws_region.current.name}:ec2:recover"]
}

# --- the private route tables of this shard: 0.0.0.0/0 -> the active's data ENI --------------
# Created at A; from then on eipgate-control owns the target (ReplaceRoute on failover).
resource "aws_route" "default" {
  for_each               = toset(var.private_route_table_ids)
  route_table_id         = each.value
  destination_cidr_block = "0.0.0.0/0"
  network_interface_id   = aws_network_interface.data_a.id
  depends_on             = [aws_instance.a]
  lifecycle {
    ignore_changes = [network_interface_id]
  }
}
