// The eipgate HA pair as a CDK construct: the same resources, with the same properties, as
// ami/cloudformation/eipgate-pair.yaml for the same inputs (the drift test in
// cdk/test/drift.test.ts compares the two resource by resource). L1 (Cfn*) resources on purpose:
// they map one to one onto the template, so the construct cannot drift from it without a failing
// test, and nothing is added that the template does not have.
import { Fn, Token } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sns from "aws-cdk-lib/aws-sns";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";

/** How the data ENI is driven (ami/README.md, "Configuration from user data and tags"). */
export enum DataPath {
  /** vfio where the kernel can (IOMMU or CONFIG_VFIO_NOIOMMU), else AF_XDP. */
  AUTO = "auto",
  VFIO = "vfio",
  AF_XDP = "af_xdp",
}

/** How the instances reach the EC2 and Secrets Manager APIs without their own NAT. */
export enum ManagementAccess {
  /**
   * An IPv6 address on each management ENI: the dual-stack endpoints over the subnet's egress-only
   * internet gateway, no public IPv4 (the subnet must be dual-stack, ::/0 to an egress-only gateway).
   */
  IPV6 = "Ipv6",
  /** An Elastic IP on each management ENI. */
  PUBLIC_IP = "PublicIp",
  /** Interface VPC endpoints you already have. */
  VPC_ENDPOINTS = "VpcEndpoints",
}

/** VPC Block Public Access: the exclusion of the public subnet (ami/OPERATOR.md). */
export enum BlockPublicAccessExclusion {
  /** No exclusion (BPA off, or excluded elsewhere). */
  NONE = "none",
  /** Outbound-initiated traffic through the internet gateway (under block-bidirectional). */
  ALLOW_EGRESS = "allow-egress",
  /** All internet gateway traffic (under block-ingress). */
  ALLOW_BIDIRECTIONAL = "allow-bidirectional",
}

/** The metric set eipgate-control publishes to CloudWatch (namespace `eipgate`). */
export enum CloudWatchMetrics {
  /** Nothing published, no alarms, no PutMetricData permission. */
  OFF = "off",
  /** ErrorPortAllocation, PacketsDropCount, HaActive, HaStandby, FailoverCount: what the alarms use. */
  DEFAULT = "default",
  /** The default set plus NAT Gateway's byte, packet and connection metrics. */
  FULL = "full",
}

/** Cross-AZ fallback: this pair rescues another AZ's private route tables while their pair is down. */
export interface CrossAzFallback {
  /** The rescued AZ's private route tables (tag them `eipgate:fallback-by=<pairName>`). */
  readonly routeTableIds: string[];
  /** The instances of the pair that owns those tables. */
  readonly instanceIds: string[];
  /** The private subnets behind those tables. */
  readonly insidePrefixes: string[];
  /** `self` (this pair's active data ENI) or a NAT Gateway id. @default "self" */
  readonly target?: string;
  /** How long the other pair must look down first (0s..60m). @default "3s" */
  readonly after?: string;
}

export interface EipgatePairProps {
  /** Unique name of the pair, e.g. use1-az1-0 (AZ id + shard): `[a-z0-9][a-z0-9-]{0,30}`. */
  readonly pairName: string;
  readonly vpcId: string;
  /** The AZ's public subnet; both ENIs of both instances. */
  readonly publicSubnetId: string;
  /** The private route tables this pair serves; their 0.0.0.0/0 route is created at instance A. */
  readonly privateRouteTableIds: string[];
  /** CIDRs of the private subnets behind those route tables (not the VPC CIDR). */
  readonly insidePrefixes: string[];
  /** The eipgate AMI (ami/packer). */
  readonly imageId: string;
  /**
   * Its IPv4 addresses per network interface limit serviceAddressCount (ami/OPERATOR.md, "Service
   * IP limits"). @default "c6in.large"
   */
  readonly instanceType?: string;
  /**
   * Service addresses of the pair, 1..8: secondary private IPs of the data ENI, each with its own
   * Elastic IP, all moved together on failover. At most the instance type's IPv4 addresses per
   * interface - 1 (refused here for the types of that table). @default 1
   */
  readonly serviceAddressCount?: number;
  /** @default DataPath.AUTO */
  readonly dataPath?: DataPath;
  /** @default ManagementAccess.IPV6 */
  readonly managementAccess?: ManagementAccess;
  /** Exclude the public subnet from VPC Block Public Access (one exclusion per subnet). @default NONE */
  readonly blockPublicAccessExclusion?: BlockPublicAccessExclusion;
  /** Admit everything on the data ENIs so security groups track no connection. @default false */
  readonly untrackedDataPath?: boolean;
  /** Attach AmazonSSMManagedInstanceCore. @default true */
  readonly enableSsm?: boolean;
  /** EC2 key pair for SSH. @default none */
  readonly keyName?: string;
  /** CIDR allowed to SSH to the management ENIs. @default none */
  readonly adminCidr?: string;
  /** @default no cross-AZ fallback */
  readonly fallback?: CrossAzFallback;
  /** @default CloudWatchMetrics.DEFAULT */
  readonly cloudWatchMetrics?: CloudWatchMetrics;
  /** Topic the alarms notify. @default alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /** Dropped packets in 5 minutes above which the drops alarm fires. @default 1000 */
  readonly dropAlarmThreshold?: number;
  /**
   * The name of an existing CloudWatch Logs group the translation logs are shipped to, one stream
   * per instance (not created here: it outlives the pair). @default none (not shipped)
   */
  readonly translationLogGroup?: string;
}

const PAIR_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;
const FALLBACK_TARGET = /^(self|nat-[0-9a-f]{8,17})$/;
const DURATION = /^[0-9]+(ms|s|m)$/;
const LOG_GROUP = /^[A-Za-z0-9._/#-]{1,512}$/;
const MAX_SERVICE_ADDRESSES = 8;
/** Service addresses at most where the data ENI holds fewer than 10 IPv4 addresses (the template's Rules). */
const SERVICE_ADDRESS_LIMITS: Record<string, number> = {
  "t4g.nano": 1, "t4g.micro": 1, "t4g.small": 3, "c6gn.medium": 3, "c7gn.medium": 3, "t4g.medium": 5,
};
const SSM_POLICY = "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore";

/** The alarms on eipgate-control's metrics, as in the template (name -> definition). */
const ALARMS: ReadonlyArray<{
  id: string;
  suffix: string;
  description: string;
  metric: string;
  statistic: string;
  period: number;
  evaluationPeriods: number;
  operator: string;
  threshold?: number; // undefined: dropAlarmThreshold
  missing: string;
}> = [
  {
    id: "PortAllocationErrorsAlarm", suffix: "port-allocation-errors",
    description: "no free outside port for a new connection (ErrorPortAllocation; add EIPs or shard)",
    metric: "ErrorPortAllocation", statistic: "Sum", period: 60, evaluationPeriods: 1,
    operator: "GreaterThanThreshold", threshold: 0, missing: "notBreaching",
  },
  {
    id: "DropsAlarm", suffix: "drops",
    description: "more packets dropped than DropAlarmThreshold in 5 minutes (PacketsDropCount; eipgatectl stats shows drops by reason)",
    metric: "PacketsDropCount", statistic: "Sum", period: 300, evaluationPeriods: 1,
    operator: "GreaterThanThreshold", threshold: undefined, missing: "notBreaching",
  },
  {
    id: "NoActiveAlarm", suffix: "no-active",
    description: "no instance of the pair is active for 2 minutes (HaActive; the AZ's private subnets have no egress)",
    metric: "HaActive", statistic: "Maximum", period: 60, evaluationPeriods: 2,
    operator: "LessThanThreshold", threshold: 1, missing: "breaching",
  },
  {
    id: "NoStandbyAlarm", suffix: "no-standby",
    description: "no standby in sync for 5 minutes (HaStandby; the next failure is an outage)",
    metric: "HaStandby", statistic: "Maximum", period: 60, evaluationPeriods: 5,
    operator: "LessThanThreshold", threshold: 1, missing: "breaching",
  },
  {
    id: "FailoverAlarm", suffix: "failover",
    description: "a failover happened (FailoverCount; eipgatectl ha-status says why)",
    metric: "FailoverCount", statistic: "Sum", period: 60, evaluationPeriods: 1,
    operator: "GreaterThanOrEqualToThreshold", threshold: 1, missing: "notBreaching",
  },
];

/** What the template's Fn::ForEach does to a collection value in a logical id (&{X}). */
function alnum(v: string): string {
  return v.replace(/[^A-Za-z0-9]/g, "");
}

function requireList(what: string, v: string[]): void {
  if (v.length === 0 || v.some((x) => x === "" || Token.isUnresolved(x))) {
    throw new Error(`EipgatePair: ${what} must be a non-empty list of literal values (one resource each)`);
  }
}

/**
 * One eipgate HA pair (one shard of one Availability Zone): two NAT instances with a management
 * ENI and a data ENI each, the service addresses (1 to 8) with their Elastic IPs, the default routes of the
 * private route tables, security groups, the least-privilege instance role, the HA secret, EC2
 * auto-recovery alarms and the alarms on eipgate-control's CloudWatch metrics.
 */
export class EipgatePair extends Construct {
  /** The pair's first egress address (allowlist all of elasticIps at third parties). */
  public readonly elasticIp: string;
  /** Every egress address of the pair (serviceAddressCount), in the order of the service addresses. */
  public readonly elasticIps: string[];
  public readonly instanceA: ec2.CfnInstance;
  public readonly instanceB: ec2.CfnInstance;
  public readonly role: iam.CfnRole;
  /** The first service address: the data ENI's secondary private IP that carries the first EIP. */
  public readonly servicePrivateIp: string;
  /** Every service address (the data ENI's secondary private IPs, a list token). */
  public readonly servicePrivateIps: string[];
  /** The alarms on eipgate-control's metrics (empty when cloudWatchMetrics is OFF). */
  public readonly alarms: cloudwatch.CfnAlarm[] = [];
  /** With a fallback: the command that tags the rescued tables (run it once). */
  public readonly fallbackTagCommand?: string;

  constructor(scope: Construct, id: string, props: EipgatePairProps) {
    super(scope, id);
    const p = this.validate(props);
    const name = p.pairName;
    const pairTag = { key: "eipgate:pair", value: name };

    // --- HA secret -------------------------------------------------------------------------
    const secret = new secretsmanager.CfnSecret(this, "HaSecret", {
      name: `eipgate/${name}/ha-key`,
      description: `eipgate ${name} HA shared secret`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      tags: [pairTag],
    });

    // --- IAM -------------------------------------------------------------------------------
    const statements: unknown[] = [
      {
        Sid: "Describe",
        Effect: "Allow",
        Action: ["ec2:DescribeRouteTables", "ec2:DescribeAddresses", "ec2:DescribeNetworkInterfaces", "ec2:DescribeInstanceStatus"],
        Resource: "*",
      },
      {
        Sid: "ReplaceRoutesOfThisPair",
        Effect: "Allow",
        Action: "ec2:ReplaceRoute",
        Resource: Fn.sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:route-table/*"),
        Condition: { StringEquals: { "ec2:ResourceTag/eipgate:pair": name } },
      },
      {
        // The liveness lease: the active rewrites eipgate:lease on its own tables.
        Sid: "LeaseOnTablesOfThisPair",
        Effect: "Allow",
        Action: "ec2:CreateTags",
        Resource: Fn.sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:route-table/*"),
        Condition: {
          StringEquals: { "ec2:ResourceTag/eipgate:pair": name },
          "ForAllValues:StringEquals": { "aws:TagKeys": ["eipgate:lease"] },
        },
      },
      {
        Sid: "MoveServiceIpWithinThisPair",
        Effect: "Allow",
        Action: "ec2:AssignPrivateIpAddresses",
        Resource: Fn.sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*"),
        Condition: { StringEquals: { "ec2:ResourceTag/eipgate:pair": name, "ec2:ResourceTag/eipgate:role": "data" } },
      },
      { Sid: "HaSecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: secret.ref },
    ];
    if (p.fallback) {
      statements.push({
        Sid: "ReplaceRoutesOfTablesThisPairRescues",
        Effect: "Allow",
        Action: "ec2:ReplaceRoute",
        Resource: Fn.sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:route-table/*"),
        Condition: { StringEquals: { "ec2:ResourceTag/eipgate:fallback-by": name } },
      });
    }
    const metricsOn = p.cloudWatchMetrics !== CloudWatchMetrics.OFF;
    if (metricsOn) {
      statements.push({
        Sid: "PutMetricDataEipgateNamespace",
        Effect: "Allow",
        Action: "cloudwatch:PutMetricData",
        Resource: "*",
        Condition: { StringEquals: { "cloudwatch:namespace": "eipgate" } },
      });
    }
    if (p.translationLogGroup) {
      // Translation logs (cloudwatch_logs:): CreateLogStream on the group, PutLogEvents on its streams.
      const group = `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${p.translationLogGroup}`;
      statements.push({
        Sid: "ShipTranslationLogs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: [Fn.sub(group), Fn.sub(`${group}:log-stream:*`)],
      });
    }
    this.role = new iam.CfnRole(this, "Role", {
      assumeRolePolicyDocument: {
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
      },
      managedPolicyArns: p.enableSsm ? [Fn.sub(SSM_POLICY)] : undefined,
      policies: [{ policyName: "eipgate-control", policyDocument: { Version: "2012-10-17", Statement: statements } }],
      tags: [pairTag],
    });
    const profile = new iam.CfnInstanceProfile(this, "InstanceProfile", { roles: [this.role.ref] });

    // --- security groups -------------------------------------------------------------------
    const dataSg = new ec2.CfnSecurityGroup(this, "DataSg", {
      groupDescription: `eipgate ${name} data ENIs (NAT traffic)`,
      vpcId: p.vpcId,
      securityGroupEgress: [
        { ipProtocol: "-1", cidrIp: "0.0.0.0/0", description: "translated traffic and replies to the private subnets" },
      ],
      tags: [{ key: "Name", value: `eipgate-${name}-data` }],
    });
    for (const prefix of p.insidePrefixes) {
      new ec2.CfnSecurityGroupIngress(this, `DataSgIngress${alnum(prefix)}`, {
        groupId: dataSg.ref, ipProtocol: "-1", cidrIp: prefix, description: "private subnet",
      });
    }
    for (const prefix of p.fallback?.insidePrefixes ?? []) {
      new ec2.CfnSecurityGroupIngress(this, `DataSgIngressFallback${alnum(prefix)}`, {
        groupId: dataSg.ref, ipProtocol: "-1", cidrIp: prefix,
        description: "rescued private subnet (cross-AZ fallback)",
      });
    }
    if (p.untrackedDataPath) {
      new ec2.CfnSecurityGroupIngress(this, "DataSgIngressAll", {
        groupId: dataSg.ref, ipProtocol: "-1", cidrIp: "0.0.0.0/0", description: "all (untracked connections)",
      });
    }
    const ipv6Mgmt = p.managementAccess === ManagementAccess.IPV6;
    const mgmtSg = new ec2.CfnSecurityGroup(this, "MgmtSg", {
      groupDescription: `eipgate ${name} management ENIs (HA heartbeats, AWS APIs)`,
      vpcId: p.vpcId,
      securityGroupEgress: [
        { ipProtocol: "tcp", fromPort: 443, toPort: 443, cidrIp: "0.0.0.0/0", description: "EC2 / Secrets Manager / SSM APIs" },
        { ipProtocol: "tcp", fromPort: 80, toPort: 80, cidrIp: "0.0.0.0/0", description: "Debian security updates" },
        { ipProtocol: "udp", fromPort: 123, toPort: 123, cidrIp: "169.254.169.123/32", description: "Amazon Time Sync" },
        ...(ipv6Mgmt ? [
          { ipProtocol: "tcp", fromPort: 443, toPort: 443, cidrIpv6: "::/0", description: "EC2 / Secrets Manager dual-stack APIs over IPv6" },
          { ipProtocol: "tcp", fromPort: 80, toPort: 80, cidrIpv6: "::/0", description: "Debian security updates over IPv6" },
        ] : []),
      ],
      tags: [{ key: "Name", value: `eipgate-${name}-mgmt` }],
    });
    new ec2.CfnSecurityGroupIngress(this, "MgmtSgHeartbeatIn", {
      groupId: mgmtSg.ref, ipProtocol: "udp", fromPort: 7410, toPort: 7410, sourceSecurityGroupId: mgmtSg.ref,
      description: "HA heartbeats, flow sync, handover (HMAC-SHA256 authenticated)",
    });
    new ec2.CfnSecurityGroupEgress(this, "MgmtSgHeartbeatOut", {
      groupId: mgmtSg.ref, ipProtocol: "udp", fromPort: 7410, toPort: 7410, destinationSecurityGroupId: mgmtSg.ref,
      description: "HA heartbeats to the peer",
    });
    if (p.adminCidr) {
      new ec2.CfnSecurityGroupIngress(this, "MgmtSgSsh", {
        groupId: mgmtSg.ref, ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIp: p.adminCidr,
      });
    }

    // --- ENIs and addresses ----------------------------------------------------------------
    const eni = (id: string, sg: ec2.CfnSecurityGroup, description: string, role: string, data: boolean, service = false) =>
      new ec2.CfnNetworkInterface(this, id, {
        subnetId: p.publicSubnetId,
        groupSet: [sg.ref],
        sourceDestCheck: data ? false : undefined,
        secondaryPrivateIpAddressCount: service ? p.serviceAddressCount : undefined,
        ipv6AddressCount: !data && ipv6Mgmt ? 1 : undefined, // the API traffic's source address
        description,
        tags: [pairTag, { key: "eipgate:role", value: role }],
      });
    const mgmtEniA = eni("MgmtEniA", mgmtSg, `eipgate ${name} A management`, "mgmt", false);
    const mgmtEniB = eni("MgmtEniB", mgmtSg, `eipgate ${name} B management`, "mgmt", false);
    const dataEniA = eni("DataEniA", dataSg, `eipgate ${name} A data`, "data", true, true);
    const dataEniB = eni("DataEniB", dataSg, `eipgate ${name} B data`, "data", true);
    this.servicePrivateIps = dataEniA.attrSecondaryPrivateIpAddresses;
    this.servicePrivateIp = Fn.select(0, this.servicePrivateIps);

    // Service address n: its EIP (ServiceEip, ServiceEip2..8), associated with the secondary IP
    // n-1 of the list, not with the ENI: it follows the IP on failover.
    const serviceEips: ec2.CfnEIP[] = [];
    let serviceEipAssociation: ec2.CfnEIPAssociation | undefined;
    for (let n = 1; n <= p.serviceAddressCount; n++) {
      const suffix = n === 1 ? "" : String(n);
      const eip = new ec2.CfnEIP(this, `ServiceEip${suffix}`, {
        domain: "vpc",
        tags: [{ key: "Name", value: `eipgate-${name}${n === 1 ? "" : `-${n}`}` }, pairTag],
      });
      const association = new ec2.CfnEIPAssociation(this, `ServiceEip${suffix}Association`, {
        allocationId: eip.attrAllocationId,
        networkInterfaceId: dataEniA.ref,
        privateIpAddress: Fn.select(n - 1, this.servicePrivateIps),
      });
      serviceEips.push(eip);
      serviceEipAssociation ??= association;
    }
    this.elasticIps = serviceEips.map((e) => e.ref);
    this.elasticIp = this.elasticIps[0];
    // VPC Block Public Access blocks the service EIP's internet gateway traffic (it exempts only
    // NAT gateways and egress-only gateways); Ipv6 management leaves by an egress-only gateway.
    if (p.blockPublicAccessExclusion !== BlockPublicAccessExclusion.NONE) {
      new ec2.CfnVPCBlockPublicAccessExclusion(this, "BpaExclusionPublicSubnet", {
        subnetId: p.publicSubnetId,
        internetGatewayExclusionMode: p.blockPublicAccessExclusion,
        tags: [{ key: "Name", value: `eipgate-${name}` }, pairTag],
      });
    }
    if (p.managementAccess === ManagementAccess.PUBLIC_IP) {
      for (const [ab, mgmtEni] of [["A", mgmtEniA], ["B", mgmtEniB]] as const) {
        const eip = new ec2.CfnEIP(this, `MgmtEip${ab}`, {
          domain: "vpc",
          tags: [{ key: "Name", value: `eipgate-${name}-${ab.toLowerCase()}-mgmt` }],
        });
        new ec2.CfnEIPAssociation(this, `MgmtEip${ab}Association`, {
          allocationId: eip.attrAllocationId, networkInterfaceId: mgmtEni.ref,
        });
      }
    }

    // --- instances -------------------------------------------------------------------------
    const launchTemplate = new ec2.CfnLaunchTemplate(this, "LaunchTemplate", {
      launchTemplateData: {
        imageId: p.imageId,
        instanceType: p.instanceType,
        keyName: p.keyName || undefined,
        iamInstanceProfile: { arn: profile.attrArn },
        metadataOptions: {
          httpEndpoint: "enabled",
          httpTokens: "required", // IMDSv2 only
          httpPutResponseHopLimit: 1,
          instanceMetadataTags: "enabled", // eipgate:* tags readable by eipgate-render-config
        },
        monitoring: { enabled: false }, // basic: the recovery alarms read 1-minute status checks
        tagSpecifications: [{ resourceType: "instance", tags: [pairTag] }],
      },
    });
    // eipgate:cloudwatch and the fallback as instance tags: CloudFormation changes tags without
    // interruption (user data or a new launch template version would replace or restart them).
    const instanceTags = (ab: string): { key: string; value: string }[] => {
      const tags = [
        { key: "Name", value: `eipgate-${name}-${ab}` },
        { key: "eipgate:cloudwatch", value: p.cloudWatchMetrics },
        // Ipv6: eipgate-render-config configures the dual-stack endpoint over IPv6
        { key: "eipgate:management", value: p.managementAccess },
        // the EIPs, paired with user data's service_ips by index (a tag: changes restart nothing)
        { key: "eipgate:allocation-ids", value: Fn.join(",", serviceEips.map((e) => e.attrAllocationId)) },
      ];
      if (p.translationLogGroup) {
        tags.push({ key: "eipgate:translation-log-group", value: p.translationLogGroup });
      }
      const fb = p.fallback;
      if (fb) {
        tags.push(
          { key: "eipgate:fallback-for-route-tables", value: fb.routeTableIds.join(",") },
          { key: "eipgate:fallback-for-instances", value: fb.instanceIds.join(",") },
          { key: "eipgate:fallback-for-inside-prefixes", value: fb.insidePrefixes.join(",") },
          { key: "eipgate:fallback-target", value: fb.target ?? "self" },
          { key: "eipgate:fallback-after", value: fb.after ?? "3s" },
        );
      }
      return tags;
    };
    const userData = (priority: number, peerEniVar: string, peerMgmt: ec2.CfnNetworkInterface, peerEni: ec2.CfnNetworkInterface) =>
      Fn.base64(Fn.sub(
        `{"eipgate": {"version": 1, "pair": "${name}", "priority": ${priority},\n` +
        `  "peer_address": "\${PeerIp}", "peer_eni": "\${${peerEniVar}}",\n` +
        '  "service_ips": ["${ServiceIps}"], "inside_prefixes": ["${Prefixes}"],\n' +
        '  "route_table_ids": ["${Tables}"], "ha_secret_arn": "${HaSecret}",\n' +
        `  "data_path": "${p.dataPath}"}}\n`,
        {
          PeerIp: peerMgmt.attrPrimaryPrivateIpAddress,
          [peerEniVar]: peerEni.ref,
          ServiceIps: Fn.join('", "', this.servicePrivateIps),
          Prefixes: p.insidePrefixes.join('", "'),
          Tables: p.privateRouteTableIds.join('", "'),
          HaSecret: secret.ref,
        },
      ));
    const instance = (ab: "A" | "B", mgmt: ec2.CfnNetworkInterface, data: ec2.CfnNetworkInterface, priority: number,
      peerEniVar: string, peerMgmt: ec2.CfnNetworkInterface, peerEni: ec2.CfnNetworkInterface) =>
      new ec2.CfnInstance(this, `Instance${ab}`, {
        launchTemplate: { launchTemplateId: launchTemplate.ref, version: launchTemplate.attrLatestVersionNumber },
        networkInterfaces: [
          { deviceIndex: "0", networkInterfaceId: mgmt.ref },
          { deviceIndex: "1", networkInterfaceId: data.ref },
        ],
        tags: instanceTags(ab.toLowerCase()),
        userData: userData(priority, peerEniVar, peerMgmt, peerEni),
      });
    this.instanceA = instance("A", mgmtEniA, dataEniA, 150, "DataEniB", mgmtEniB, dataEniB);
    this.instanceA.addDependency(serviceEipAssociation!);
    this.instanceB = instance("B", mgmtEniB, dataEniB, 100, "DataEniA", mgmtEniA, dataEniA);

    // EC2 recovers an instance whose host fails (same ENIs, same addresses).
    for (const [ab, inst] of [["A", this.instanceA], ["B", this.instanceB]] as const) {
      new cloudwatch.CfnAlarm(this, `Recover${ab}`, {
        alarmDescription: `eipgate ${name} ${ab} - recover on system status check failure`,
        namespace: "AWS/EC2",
        metricName: "StatusCheckFailed_System",
        dimensions: [{ name: "InstanceId", value: inst.ref }],
        statistic: "Maximum",
        period: 60,
        evaluationPeriods: 2,
        threshold: 1,
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        alarmActions: [Fn.sub("arn:${AWS::Partition}:automate:${AWS::Region}:ec2:recover")],
      });
    }

    // --- alarms on eipgate-control's metrics -----------------------------------------------
    if (metricsOn) {
      for (const a of ALARMS) {
        this.alarms.push(new cloudwatch.CfnAlarm(this, a.id, {
          alarmName: `eipgate-${name}-${a.suffix}`,
          alarmDescription: `eipgate ${name} - ${a.description}`,
          namespace: "eipgate",
          metricName: a.metric,
          dimensions: [
            { name: "PairName", value: name },
            { name: "AvailabilityZone", value: this.instanceA.attrAvailabilityZone },
          ],
          statistic: a.statistic,
          period: a.period,
          evaluationPeriods: a.evaluationPeriods,
          datapointsToAlarm: a.evaluationPeriods,
          comparisonOperator: a.operator,
          threshold: a.threshold ?? p.dropAlarmThreshold,
          treatMissingData: a.missing,
          alarmActions: p.alarmTopic ? [p.alarmTopic.topicArn] : undefined,
        }));
      }
    }

    // --- the private route tables: 0.0.0.0/0 -> the active's data ENI (A at creation) -------
    for (const rtb of p.privateRouteTableIds) {
      const route = new ec2.CfnRoute(this, `DefaultRoute${alnum(rtb)}`, {
        routeTableId: rtb, destinationCidrBlock: "0.0.0.0/0", networkInterfaceId: dataEniA.ref,
      });
      route.addDependency(this.instanceA);
    }
    if (p.fallback) {
      this.fallbackTagCommand = `aws ec2 create-tags --resources ${p.fallback.routeTableIds.join(" ")} ` +
        `--tags Key=eipgate:fallback-by,Value=${name}`;
    }
    this.suppressNagFindings(p);
  }

  /** The instances' ids, for `fallback.instanceIds` of the pair that rescues this one. */
  public get instanceIds(): string[] {
    return [this.instanceA.ref, this.instanceB.ref];
  }

  private validate(props: EipgatePairProps) {
    const p = {
      ...props,
      instanceType: props.instanceType ?? "c6in.large",
      dataPath: props.dataPath ?? DataPath.AUTO,
      managementAccess: props.managementAccess ?? ManagementAccess.IPV6,
      blockPublicAccessExclusion: props.blockPublicAccessExclusion ?? BlockPublicAccessExclusion.NONE,
      untrackedDataPath: props.untrackedDataPath ?? false,
      enableSsm: props.enableSsm ?? true,
      cloudWatchMetrics: props.cloudWatchMetrics ?? CloudWatchMetrics.DEFAULT,
      dropAlarmThreshold: props.dropAlarmThreshold ?? 1000,
      serviceAddressCount: props.serviceAddressCount ?? 1,
    };
    if (!Token.isUnresolved(p.pairName) && !PAIR_NAME.test(p.pairName)) {
      throw new Error(`EipgatePair: pairName '${p.pairName}' must match ${PAIR_NAME.source}`);
    }
    requireList("privateRouteTableIds", p.privateRouteTableIds);
    requireList("insidePrefixes", p.insidePrefixes);
    if (!(p.dropAlarmThreshold >= 0)) {
      throw new Error("EipgatePair: dropAlarmThreshold must be >= 0");
    }
    // A literal count: one EIP and association each (the template's ServiceAddressCount 1..8).
    const count = p.serviceAddressCount;
    if (Token.isUnresolved(count) || !Number.isInteger(count) || count < 1 || count > MAX_SERVICE_ADDRESSES) {
      throw new Error(`EipgatePair: serviceAddressCount must be an integer 1..${MAX_SERVICE_ADDRESSES}`);
    }
    const most = SERVICE_ADDRESS_LIMITS[p.instanceType];
    if (most !== undefined && count > most) {
      throw new Error(`EipgatePair: serviceAddressCount ${count}: a ${p.instanceType}'s data ENI holds its primary IP and ${most} more (ami/OPERATOR.md, "Service IP limits")`);
    }
    if (p.translationLogGroup !== undefined && p.translationLogGroup !== "" &&
      (Token.isUnresolved(p.translationLogGroup) || !LOG_GROUP.test(p.translationLogGroup))) {
      throw new Error(`EipgatePair: translationLogGroup '${p.translationLogGroup}' must be a literal log group name (${LOG_GROUP.source})`);
    }
    const fb = p.fallback;
    if (fb) {
      // The template's Rules FallbackComplete: half a configuration would only fail at boot.
      requireList("fallback.routeTableIds", fb.routeTableIds);
      requireList("fallback.instanceIds", fb.instanceIds);
      requireList("fallback.insidePrefixes", fb.insidePrefixes);
      if (fb.target !== undefined && !FALLBACK_TARGET.test(fb.target)) {
        throw new Error(`EipgatePair: fallback.target '${fb.target}' must be self or nat-<hex>`);
      }
      if (fb.after !== undefined && !DURATION.test(fb.after)) {
        throw new Error(`EipgatePair: fallback.after '${fb.after}' must be a duration like 3s`);
      }
    }
    return p;
  }

  /** cdk-nag AwsSolutions findings this design accepts, each with its reason. */
  private suppressNagFindings(p: { enableSsm: boolean; untrackedDataPath: boolean; translationLogGroup?: string }): void {
    const suppress = (id: string, rules: { id: string; reason: string; appliesTo?: string[] }[]) => {
      const child = this.node.tryFindChild(id);
      if (child) {
        NagSuppressions.addResourceSuppressions(child, rules);
      }
    };
    suppress("Role", [
      ...(p.enableSsm ? [{
        id: "AwsSolutions-IAM4",
        reason: "AmazonSSMManagedInstanceCore is AWS's maintained policy for Session Manager (enableSsm: false removes it); it replaces SSH.",
        appliesTo: ["Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"],
      }] : []),
      {
        id: "AwsSolutions-IAM5",
        reason: "EC2 Describe* and cloudwatch:PutMetricData have no resource-level permissions (Resource * is required; PutMetricData is limited by the cloudwatch:namespace condition). " +
          "ReplaceRoute and AssignPrivateIpAddresses use route-table/* and network-interface/* narrowed by the eipgate:pair / eipgate:fallback-by resource-tag conditions, " +
          "because the pair's tables and ENIs are not known as ARNs when the policy is written (the same policy as ami/iam/eipgate-control-policy.json). " +
          "PutLogEvents goes to the translation log group's streams, named by instance ids and created by eipgate-control (log-stream:* of that one group).",
        appliesTo: [
          "Resource::*",
          "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:route-table/*",
          "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*",
          ...(p.translationLogGroup
            ? [`Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:${p.translationLogGroup}:log-stream:*`]
            : []),
        ],
      },
    ]);
    suppress("HaSecret", [{
      id: "AwsSolutions-SMG4",
      reason: "The HA key is read at boot by both instances; rotating it without restarting both would split the pair (heartbeats fail HMAC). Rotate by updating the secret and rebooting standby, then active (ami/OPERATOR.md).",
    }]);
    for (const ab of ["A", "B"]) {
      suppress(`Instance${ab}`, [
        {
          id: "AwsSolutions-EC28",
          reason: "Detailed monitoring is off on purpose: it bills ~7 custom metrics per instance ($8.40/month for two pairs, a third of the whole bill), the recovery alarms read the status-check metrics that EC2 sends every minute without it, and eipgate-control publishes its own NAT metrics (CloudWatchMetrics).",
        },
        {
          id: "AwsSolutions-EC29",
          reason: "An HA pair member, not in an Auto Scaling group by design (fixed ENIs and the service IP move between A and B); EC2 auto-recovery alarms replace its host. Termination protection would block stack updates that replace an instance.",
        },
        {
          id: "AwsSolutions-EC26",
          reason: "The only volume is the eipgate AMI's root volume, which holds no data (configuration is rendered from tags and user data at every boot); use account-level EBS encryption by default if required.",
        },
      ]);
    }
    if (p.untrackedDataPath) {
      suppress("DataSgIngressAll", [{
        id: "AwsSolutions-EC23",
        reason: "untrackedDataPath: admitting everything keeps security groups from tracking connections (no conntrack_allowance limit); the dataplane itself drops unsolicited outside-to-inside traffic.",
      }]);
      suppress("DataSg", [{
        id: "AwsSolutions-EC23",
        reason: "untrackedDataPath: see DataSgIngressAll.",
      }]);
    }
  }
}
