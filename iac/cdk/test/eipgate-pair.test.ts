// The construct on its own: what it synthesizes (assertions + a snapshot), cdk-nag's AwsSolutions
// pack with every suppression justified, and props validation.
import { App, Aspects, Stack } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import * as sns from "aws-cdk-lib/aws-sns";
import { AwsSolutionsChecks } from "cdk-nag";
import { BlockPublicAccessExclusion, CloudWatchMetrics, EipgatePair, EipgatePairProps, ManagementAccess } from "../lib";

const PROPS: EipgatePairProps = {
  pairName: "use1-az1-0", vpcId: "vpc-0123456789abcdef0", publicSubnetId: "subnet-0123456789abcdef0",
  privateRouteTableIds: ["rtb-0a000000000000001"], insidePrefixes: ["10.0.128.0/20"], imageId: "ami-0123456789abcdef0",
};

function synth(extra: Partial<EipgatePairProps> = {}, withTopic = false): { stack: Stack; pair: EipgatePair; t: Template } {
  const stack = new Stack(new App(), "Test", { env: { account: "123456789012", region: "us-east-1" } });
  const alarmTopic = withTopic ? new sns.Topic(stack, "Ops", { enforceSSL: true }) : undefined;
  const pair = new EipgatePair(stack, "Pair", { ...PROPS, alarmTopic, ...extra });
  return { stack, pair, t: Template.fromStack(stack) };
}

test("snapshot (defaults)", () => {
  expect(synth().t.toJSON()).toMatchSnapshot();
});

test("an HA pair: two instances, four ENIs, one service EIP (management over IPv6), one route per table", () => {
  const { t } = synth({ privateRouteTableIds: ["rtb-0a000000000000001", "rtb-0a000000000000002"] });
  t.resourceCountIs("AWS::EC2::Instance", 2);
  t.resourceCountIs("AWS::EC2::NetworkInterface", 4);
  t.resourceCountIs("AWS::EC2::EIP", 1);
  t.resourceCountIs("AWS::EC2::VPCBlockPublicAccessExclusion", 0);
  expect(Object.values(t.findResources("AWS::EC2::NetworkInterface", { Properties: { Ipv6AddressCount: 1 } }))
    .map((r) => r.Properties.Description).sort()).toEqual(["eipgate use1-az1-0 A management", "eipgate use1-az1-0 B management"]);
  t.hasResourceProperties("AWS::EC2::Instance", {
    Tags: Match.arrayWith([{ Key: "eipgate:management", Value: "Ipv6" }]),
  });
  t.hasResourceProperties("AWS::EC2::SecurityGroup", {
    SecurityGroupEgress: Match.arrayWith([Match.objectLike({ CidrIpv6: "::/0", FromPort: 443 })]),
  });
  t.resourceCountIs("AWS::EC2::Route", 2);
  t.hasResourceProperties("AWS::EC2::NetworkInterface", { SourceDestCheck: false, SecondaryPrivateIpAddressCount: 1 });
  t.hasResourceProperties("AWS::EC2::LaunchTemplate", {
    LaunchTemplateData: Match.objectLike({ MetadataOptions: Match.objectLike({ HttpTokens: "required", InstanceMetadataTags: "enabled" }) }),
  });
  t.hasResource("AWS::EC2::Route", { DependsOn: [Match.stringLikeRegexp("^PairInstanceA")] });
});

test("PublicIp management: two management EIPs, no IPv6; a BPA exclusion on request", () => {
  const { t } = synth({ managementAccess: ManagementAccess.PUBLIC_IP,
    blockPublicAccessExclusion: BlockPublicAccessExclusion.ALLOW_BIDIRECTIONAL });
  t.resourceCountIs("AWS::EC2::EIP", 3);
  expect(t.findResources("AWS::EC2::NetworkInterface", { Properties: { Ipv6AddressCount: 1 } })).toEqual({});
  t.hasResourceProperties("AWS::EC2::VPCBlockPublicAccessExclusion", {
    SubnetId: "subnet-0123456789abcdef0", InternetGatewayExclusionMode: "allow-bidirectional",
  });
});

test("IAM: least privilege scoped by tags, PutMetricData only in namespace eipgate", () => {
  const { t } = synth();
  t.hasResourceProperties("AWS::IAM::Role", {
    Policies: [{
      PolicyName: "eipgate-control",
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Sid: "ReplaceRoutesOfThisPair", Condition: { StringEquals: { "ec2:ResourceTag/eipgate:pair": "use1-az1-0" } } }),
          { Sid: "PutMetricDataEipgateNamespace", Effect: "Allow", Action: "cloudwatch:PutMetricData", Resource: "*",
            Condition: { StringEquals: { "cloudwatch:namespace": "eipgate" } } },
        ]),
      },
    }],
  });
  const off = synth({ cloudWatchMetrics: CloudWatchMetrics.OFF }).t;
  const roles = Object.values(off.findResources("AWS::IAM::Role"));
  expect(JSON.stringify(roles.map((r) => r.Properties.Policies))).not.toContain("cloudwatch:PutMetricData");
});

test("alarms: five on the pair's metrics, actions only with a topic, none when metrics are off", () => {
  const { t } = synth({}, true);
  const alarms = t.findResources("AWS::CloudWatch::Alarm", { Properties: { Namespace: "eipgate" } });
  expect(Object.values(alarms).map((a) => a.Properties.MetricName).sort()).toEqual(
    ["ErrorPortAllocation", "FailoverCount", "HaActive", "HaStandby", "PacketsDropCount"]);
  for (const a of Object.values(alarms)) {
    expect(a.Properties.Dimensions.map((d: { Name: string }) => d.Name)).toEqual(["PairName", "AvailabilityZone"]);
    expect(a.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^Ops/) }]);
  }
  t.hasResourceProperties("AWS::CloudWatch::Alarm", {
    MetricName: "HaActive", Statistic: "Maximum", ComparisonOperator: "LessThanThreshold", Threshold: 1,
    EvaluationPeriods: 2, TreatMissingData: "breaching",
  });
  t.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "FailoverCount", TreatMissingData: "notBreaching", Threshold: 1 });
  const noTopic = synth().t.findResources("AWS::CloudWatch::Alarm", { Properties: { Namespace: "eipgate" } });
  expect(Object.values(noTopic).every((a) => a.Properties.AlarmActions === undefined)).toBe(true);
  synth({ cloudWatchMetrics: CloudWatchMetrics.OFF }).t.resourceCountIs("AWS::CloudWatch::Alarm", 2); // the EC2 recovery ones
  synth({ dropAlarmThreshold: 7 }).t.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "PacketsDropCount", Threshold: 7 });
});

test("props are validated (the template's AllowedPattern and Rules)", () => {
  expect(() => synth({ pairName: "Bad_Name" })).toThrow(/pairName/);
  expect(() => synth({ insidePrefixes: [] })).toThrow(/insidePrefixes/);
  expect(() => synth({ fallback: { routeTableIds: ["rtb-0b000000000000001"], instanceIds: [], insidePrefixes: ["10.0.160.0/20"] } }))
    .toThrow(/fallback.instanceIds/);
  expect(() => synth({ fallback: { routeTableIds: ["rtb-0b000000000000001"], instanceIds: ["i-0b000000000000001"], insidePrefixes: ["10.0.160.0/20"], target: "igw-1" } }))
    .toThrow(/fallback.target/);
  expect(() => synth({ dropAlarmThreshold: -1 })).toThrow(/dropAlarmThreshold/);
  for (const bad of [0, 9, 2.5]) {
    expect(() => synth({ serviceAddressCount: bad })).toThrow(/serviceAddressCount must be an integer 1..8/);
  }
  // the template's Rules: no more than the data ENI holds besides its primary IP
  expect(() => synth({ instanceType: "c6gn.medium", serviceAddressCount: 4 })).toThrow(/c6gn.medium's data ENI holds its primary IP and 3 more/);
  expect(() => synth({ instanceType: "t4g.nano", serviceAddressCount: 2 })).toThrow(/serviceAddressCount 2/);
  synth({ instanceType: "c6gn.medium", serviceAddressCount: 3 });
  synth({ instanceType: "c7gn.xlarge", serviceAddressCount: 8 });
  expect(() => synth({ translationLogGroup: "a:b" })).toThrow(/translationLogGroup 'a:b'/);
});

test("service addresses: one EIP and association per address, on A's data ENI", () => {
  const { t, pair } = synth({ serviceAddressCount: 4 });
  t.resourceCountIs("AWS::EC2::EIP", 4);
  t.resourceCountIs("AWS::EC2::EIPAssociation", 4);
  t.hasResourceProperties("AWS::EC2::NetworkInterface", { Description: "eipgate use1-az1-0 A data", SecondaryPrivateIpAddressCount: 4 });
  for (let i = 0; i < 4; i++) {
    t.hasResourceProperties("AWS::EC2::EIPAssociation", {
      PrivateIpAddress: { "Fn::Select": [i, { "Fn::GetAtt": [Match.stringLikeRegexp("^PairDataEniA"), "SecondaryPrivateIpAddresses"] }] },
    });
  }
  expect(pair.elasticIps.length).toBe(4);
  expect(pair.elasticIp).toBe(pair.elasticIps[0]);
});

test("translation logs: PutLogEvents/CreateLogStream on the group only, the instance tag", () => {
  const { t } = synth({ translationLogGroup: "/eipgate/translations" });
  t.hasResourceProperties("AWS::IAM::Role", {
    Policies: [{
      PolicyName: "eipgate-control",
      PolicyDocument: {
        Statement: Match.arrayWith([{
          Sid: "ShipTranslationLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: [
            { "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/eipgate/translations" },
            { "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/eipgate/translations:log-stream:*" },
          ],
        }]),
      },
    }],
  });
  t.hasResourceProperties("AWS::EC2::Instance", {
    Tags: Match.arrayWith([{ Key: "eipgate:translation-log-group", Value: "/eipgate/translations" }]),
  });
  const off = synth().t;
  expect(JSON.stringify(off.findResources("AWS::IAM::Role"))).not.toContain("logs:");
  expect(JSON.stringify(off.findResources("AWS::EC2::Instance"))).not.toContain("translation-log-group");
});

describe("cdk-nag AwsSolutions", () => {
  const variants: [string, Partial<EipgatePairProps>][] = [
    ["defaults", {}],
    ["untracked data path, SSH, fallback, 3 addresses, translation logs", {
      untrackedDataPath: true, adminCidr: "198.51.100.0/24", keyName: "ops", serviceAddressCount: 3,
      translationLogGroup: "/eipgate/translations",
      fallback: { routeTableIds: ["rtb-0b000000000000001"], instanceIds: ["i-0b000000000000001"], insidePrefixes: ["10.0.160.0/20"] },
    }],
  ];
  test.each(variants)("no unsuppressed findings (%s)", (_name, extra) => {
    const { stack } = synth(extra, true);
    Aspects.of(stack).add(new AwsSolutionsChecks({ verbose: true }));
    const errors = Annotations.fromStack(stack).findError("*", Match.stringLikeRegexp("AwsSolutions-.*"));
    const warnings = Annotations.fromStack(stack).findWarning("*", Match.stringLikeRegexp("AwsSolutions-.*"));
    expect([...errors, ...warnings].map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });

  test("the suppressions are needed: without them cdk-nag reports the wildcard IAM and the rest", () => {
    const stack = new Stack(new App(), "Test", { env: { account: "123456789012", region: "us-east-1" } });
    // Same resources, suppressions stripped afterwards.
    const pair = new EipgatePair(stack, "Pair", PROPS);
    for (const c of pair.node.findAll()) {
      const cfn = c as unknown as { cfnOptions?: { metadata?: Record<string, unknown> } };
      if (cfn.cfnOptions?.metadata) delete cfn.cfnOptions.metadata.cdk_nag;
    }
    Aspects.of(stack).add(new AwsSolutionsChecks());
    const ids = Annotations.fromStack(stack).findError("*", Match.stringLikeRegexp("AwsSolutions-.*"))
      .map((e) => String(e.entry.data).split(/[:[]/)[0]);
    expect(new Set(ids)).toEqual(new Set(["AwsSolutions-IAM4", "AwsSolutions-IAM5", "AwsSolutions-SMG4", "AwsSolutions-EC28", "AwsSolutions-EC29", "AwsSolutions-EC26"]));
  });
});
