# The inputs of ami/cloudformation/eipgate-pair.yaml, one variable per template parameter (the
# parameter name in snake_case; "true"/"false" strings are bools, comma-delimited lists are lists).
# terraform/test/terraform.test.ts checks the names, defaults and allowed values against the template.

variable "pair_name" {
  description = "Unique name of this pair, e.g. use1-az1-0 (AZ id + shard). Tag the route tables eipgate:pair=<pair_name>."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.pair_name))
    error_message = "pair_name must match [a-z0-9][a-z0-9-]{0,30}."
  }
}

variable "vpc_id" {
  type = string
}

variable "public_subnet_id" {
  description = "The AZ's public subnet (route 0.0.0.0/0 to the internet gateway); both ENIs of both instances."
  type        = string
}

variable "private_route_table_ids" {
  description = "The private route tables this pair serves. Their 0.0.0.0/0 route is created here, at instance A; remove a NAT Gateway route first."
  type        = list(string)
  validation {
    condition     = length(var.private_route_table_ids) > 0
    error_message = "private_route_table_ids: at least one route table."
  }
}

variable "inside_prefixes" {
  description = "CIDRs of the private subnets behind those route tables (not the VPC CIDR)."
  type        = list(string)
  validation {
    condition     = length(var.inside_prefixes) > 0
    error_message = "inside_prefixes: at least one CIDR."
  }
}

variable "image_id" {
  description = "The eipgate AMI (ami/packer), of the instance type's architecture."
  type        = string
}

variable "instance_type" {
  description = "See ami/OPERATOR.md, \"Choosing an instance type\". Its IPv4 addresses per network interface limit service_address_count to that number - 1 (t4g.nano/micro 1, t4g.small, c6gn.medium and c7gn.medium 3, t4g.medium 5, .large and up 8; \"Service IP limits\")."
  type        = string
  default     = "c6in.large"
}

variable "service_address_count" {
  description = "Service addresses of this pair: secondary private IPs of the data ENI, each with its own Elastic IP, all moved together on failover. At most the instance type's IPv4 addresses per interface - 1. Set at creation: the data ENIs ignore later changes of their IPs (failover moves them), see README.md for changing it on a running pair."
  type        = number
  default     = 1
  validation {
    condition     = contains([1, 2, 3, 4, 5, 6, 7, 8], var.service_address_count)
    error_message = "service_address_count: an integer 1..8."
  }
}

variable "data_path" {
  description = "auto = vfio where the kernel can, else AF_XDP on the data ENI."
  type        = string
  default     = "auto"
  validation {
    condition     = contains(["auto", "vfio", "af_xdp"], var.data_path)
    error_message = "data_path: one of auto, vfio, af_xdp."
  }
}

variable "management_access" {
  description = "How the instances reach the EC2 and Secrets Manager APIs: Ipv6 (an IPv6 address on each management ENI, the dual-stack endpoints over the subnet's egress-only internet gateway; no public IPv4), an Elastic IP on each management ENI, or interface VPC endpoints you already have."
  type        = string
  default     = "Ipv6"
  validation {
    condition     = contains(["Ipv6", "PublicIp", "VpcEndpoints"], var.management_access)
    error_message = "management_access: Ipv6, PublicIp or VpcEndpoints."
  }
}

variable "block_public_access_exclusion" {
  description = "VPC Block Public Access: exclude public_subnet_id (allow-egress under block-bidirectional, allow-bidirectional under block-ingress; one exclusion per subnet). none = no exclusion."
  type        = string
  default     = "none"
  validation {
    condition     = contains(["none", "allow-egress", "allow-bidirectional"], var.block_public_access_exclusion)
    error_message = "block_public_access_exclusion: none, allow-egress or allow-bidirectional."
  }
}

variable "untracked_data_path" {
  description = "Allow all traffic in and out of the data ENIs so security groups track no connection. The dataplane still drops unsolicited inbound traffic."
  type        = bool
  default     = false
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore (Session Manager instead of SSH)."
  type        = bool
  default     = true
}

variable "key_name" {
  description = "EC2 key pair for SSH (empty = none)."
  type        = string
  default     = ""
}

variable "admin_cidr" {
  description = "CIDR allowed to SSH to the management ENIs (empty = none)."
  type        = string
  default     = ""
}

variable "fallback_for_route_table_ids" {
  description = "Cross-AZ fallback (optional): another AZ's private route tables this pair rescues when their pair is down. Tag each eipgate:fallback-by=<pair_name> (output fallback_tag_command). Empty = off."
  type        = list(string)
  default     = []
}

variable "fallback_for_instance_ids" {
  description = "With fallback_for_route_table_ids: the instance ids of the pair that owns those tables (its output instance_ids)."
  type        = list(string)
  default     = []
}

variable "fallback_for_inside_prefixes" {
  description = "With fallback_for_route_table_ids: the CIDRs of the private subnets behind those tables."
  type        = list(string)
  default     = []
}

variable "fallback_target" {
  description = "Where the rescued tables' default route goes: self (this pair's active data ENI) or a NAT Gateway id (nat-...)."
  type        = string
  default     = "self"
  validation {
    condition     = can(regex("^(self|nat-[0-9a-f]{8,17})$", var.fallback_target))
    error_message = "fallback_target: self or nat-<hex>."
  }
}

variable "fallback_after" {
  description = "How long the other pair must look down before this pair takes its tables (0s..60m)."
  type        = string
  default     = "3s"
  validation {
    condition     = can(regex("^[0-9]+(ms|s|m)$", var.fallback_after))
    error_message = "fallback_after: a duration such as 3s."
  }
}

variable "cloudwatch_metrics" {
  description = "Metrics eipgate-control publishes to CloudWatch (namespace eipgate): off, default (the 5 the alarms use) or full (also NAT Gateway's byte, packet and connection metrics). The alarms exist unless off."
  type        = string
  default     = "default"
  validation {
    condition     = contains(["off", "default", "full"], var.cloudwatch_metrics)
    error_message = "cloudwatch_metrics: one of off, default, full."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic the alarms notify (empty = alarms without actions)."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256})?$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn: an SNS topic ARN or empty."
  }
}

variable "translation_log_group" {
  description = "Ship the translation logs (one JSON line per connection opened and closed) to this existing CloudWatch Logs group, one stream per instance (empty = off; not created here, it outlives the pair)."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^([A-Za-z0-9._/#-]{1,512})?$", var.translation_log_group))
    error_message = "translation_log_group: a log group name (1 to 512 of A-Z a-z 0-9 . _ - / #) or empty."
  }
}

variable "drop_alarm_threshold" {
  description = "The drops alarm fires when more packets than this are dropped (PacketsDropCount) in 5 minutes."
  type        = number
  default     = 1000
  validation {
    condition     = var.drop_alarm_threshold >= 0
    error_message = "drop_alarm_threshold: >= 0."
  }
}
