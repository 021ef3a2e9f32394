# Alarms on eipgate-control's CloudWatch metrics (namespace eipgate, dimensions PairName and
# AvailabilityZone), as in ami/cloudformation/eipgate-pair.yaml. Both instances publish with the
# same dimensions, so a statistic covers the pair: Maximum of HaActive < 1 means neither is
# active. Missing data is breaching where silence means both are down (no active, no standby).

locals {
  alarms = {
    port-allocation-errors = {
      description = "no free outside port for a new connection (ErrorPortAllocation; add EIPs or shard)"
      metric      = "ErrorPortAllocation"
      statistic   = "Sum"
      period      = 60
      evaluations = 1
      operator    = "GreaterThanThreshold"
      threshold   = 0
      missing     = "notBreaching"
    }
    drops = {
      description = "more packets dropped than DropAlarmThreshold in 5 minutes (PacketsDropCount; eipgatectl stats shows drops by reason)"
      metric      = "PacketsDropCount"
      statistic   = "Sum"
      period      = 300
      evaluations = 1
      operator    = "GreaterThanThreshold"
      threshold   = var.drop_alarm_threshold
      missing     = "notBreaching"
    }
    no-active = {
      description = "no instance of the pair is active for 2 minutes (HaActive; the AZ's private subnets have no egress)"
      metric      = "HaActive"
      statistic   = "Maximum"
      period      = 60
      evaluations = 2
      operator    = "LessThanThreshold"
      threshold   = 1
      missing     = "breaching"
    }
    no-standby = {
      description = "no standby in sync for 5 minutes (HaStandby; the next failure is an outage)"
      metric      = "HaStandby"
      statistic   = "Maximum"
      period      = 60
      evaluations = 5
      operator    = "LessThanThreshold"
      threshold   = 1
      missing     = "breaching"
    }
    failover = {
      description = "a failover happened (FailoverCount; eipgatectl ha-status says why)"
      metric      = "FailoverCount"
      statistic   = "Sum"
      period      = 60
      evaluations = 1
      operator    = "GreaterThanOrEqualToThreshold"
      threshold   = 1
      missing     = "notBreaching"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "eipgate" {
  for_each            = { for k, v in local.alarms : k => v if local.metrics }
  alarm_name          = "eipgate-${var.pair_name}-${each.key}"
  alarm_description   = "eipgate ${var.pair_name} - ${each.value.description}"
  namespace           = "eipgate"
  metric_name         = each.value.metric
  dimensions          = { PairName = var.pair_name, AvailabilityZone = aws_instance.a.availability_zone }
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluations
  datapoints_to_alarm = each.value.evaluations
  comparison_operator = each.value.operator
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing
  alarm_actions       = local.has_topic ? [var.alarm_topic_arn] : []
}
