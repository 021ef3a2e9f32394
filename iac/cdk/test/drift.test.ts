// Drift guard: the construct and ami/cloudformation/eipgate-pair.yaml create the same resources,
// with the same properties, for the same inputs (every resource compared in full after both are
// evaluated: parameters substituted, conditions decided, references reduced to logical names).
import { App, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import * as sns from "aws-cdk-lib/aws-sns";
import {
  BlockPublicAccessExclusion, CloudWatchMetrics, DataPath, EipgatePair, EipgatePairProps, ManagementAccess,
} from "../lib";
import { evaluateCfn, loadCfnTemplate, normalizeCdk } from "./cfn";

const TOPIC = "arn:aws:sns:us-east-1:123456789012:ops";
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Case {
  name: string;
  cfn: Record<string, string>;
  cdk: (stack: Stack) => EipgatePairProps;
}

const BASE_CFN = {
  PairName: "use1-az1-0", VpcId: "vpc-0123456789abcdef0", PublicSubnetId: "subnet-0123456789abcdef0",
  PrivateRouteTableIds: "rtb-0a000000000000001,rtb-0a000000000000002", InsidePrefixes: "10.0.128.0/20,10.0.144.0/20",
  ImageId: "ami-0123456789abcdef0",
};
const BASE_CDK: EipgatePairProps = {
  pairName: "use1-az1-0", vpcId: "vpc-0123456789abcdef0", publicSubnetId: "subnet-0123456789abcdef0",
  privateRouteTableIds: ["rtb-0a000000000000001", "rtb-0a000000000000002"], insidePrefixes: ["10.0.128.0/20", "10.0.144.0/20"],
  imageId: "ami-0123456789abcdef0",
};

const CASES: Case[] = [
  { name: "defaults", cfn: BASE_CFN, cdk: () => BASE_CDK },
  {
    name: "everything on",
    cfn: {
      ...BASE_CFN, InstanceType: "c7gn.medium", DataPath: "af_xdp", UntrackedDataPath: "true", KeyName: "ops",
      AdminCidr: "198.51.100.0/24", FallbackForRouteTableIds: "rtb-0b000000000000001,rtb-0b000000000000002",
      FallbackForInstanceIds: "i-0b000000000000001,i-0b000000000000002", FallbackForInsidePrefixes: "10.0.160.0/20",
      FallbackTarget: "nat-0123456789abcdef0", FallbackAfter: "10s", CloudWatchMetrics: "full", AlarmTopicArn: TOPIC,
      DropAlarmThreshold: "50", ManagementAccess: "PublicIp", BlockPublicAccessExclusion: "allow-egress",
      ServiceAddressCount: "3", TranslationLogGroup: "/eipgate/translations",
    },
    cdk: (stack) => ({
      ...BASE_CDK, instanceType: "c7gn.medium", dataPath: DataPath.AF_XDP, untrackedDataPath: true, keyName: "ops",
      adminCidr: "198.51.100.0/24",
      fallback: {
        routeTableIds: ["rtb-0b000000000000001", "rtb-0b000000000000002"],
        instanceIds: ["i-0b000000000000001", "i-0b000000000000002"], insidePrefixes: ["10.0.160.0/20"],
        target: "nat-0123456789abcdef0", after: "10s",
      },
      cloudWatchMetrics: CloudWatchMetrics.FULL, alarmTopic: sns.Topic.fromTopicArn(stack, "Topic", TOPIC),
      dropAlarmThreshold: 50, managementAccess: ManagementAccess.PUBLIC_IP,
      blockPublicAccessExclusion: BlockPublicAccessExclusion.ALLOW_EGRESS,
      serviceAddressCount: 3, translationLogGroup: "/eipgate/translations",
    }),
  },
  {
    name: "eight service addresses",
    cfn: { ...BASE_CFN, ServiceAddressCount: "8" },
    cdk: () => ({ ...BASE_CDK, serviceAddressCount: 8 }),
  },
  {
    name: "minimal: metrics off, VPC endpoints, no SSM",
    cfn: { ...BASE_CFN, CloudWatchMetrics: "off", ManagementAccess: "VpcEndpoints", EnableSsm: "false", AlarmTopicArn: TOPIC },
    cdk: (stack) => ({
      ...BASE_CDK, cloudWatchMetrics: CloudWatchMetrics.OFF, managementAccess: ManagementAccess.VPC_ENDPOINTS,
      enableSsm: false, alarmTopic: sns.Topic.fromTopicArn(stack, "Topic", TOPIC),
    }),
  },
];

const cfnTemplate = loadCfnTemplate("eipgate-pair.yaml");

describe.each(CASES)("construct = eipgate-pair.yaml ($name)", (c) => {
  const fromCfn = evaluateCfn(cfnTemplate, c.cfn);
  const stack = new Stack(new App(), "Test");
  new EipgatePair(stack, "Pair", c.cdk(stack));
  const fromCdk = normalizeCdk(Template.fromStack(stack).toJSON(), "Pair");

  test("same resources (logical names and types)", () => {
    const types = (r: typeof fromCfn) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.type]));
    expect(types(fromCdk)).toEqual(types(fromCfn));
  });

  test.each(Object.keys(fromCfn))("%s: same properties and dependencies", (name) => {
    expect(fromCdk[name]).toEqual(fromCfn[name]);
  });
});

test("the comparison sees a difference (a drifted construct fails)", () => {
  const stack = new Stack(new App(), "Test");
  const pair = new EipgatePair(stack, "Pair", BASE_CDK);
  pair.alarms[0].threshold = 5;
  const fromCdk = normalizeCdk(Template.fromStack(stack).toJSON(), "Pair");
  const fromCfn = evaluateCfn(cfnTemplate, BASE_CFN);
  expect(fromCdk.PortAllocationErrorsAlarm).not.toEqual(fromCfn.PortAllocationErrorsAlarm);
  expect(fromCdk.DropsAlarm).toEqual(fromCfn.DropsAlarm);
});

test.each([1, 3, 8])("service addresses: %d EIPs, associations, the joined list in user data, the ids tag", (n) => {
  const fromCfn = evaluateCfn(cfnTemplate, { ...BASE_CFN, ServiceAddressCount: String(n) });
  const eips = ["ServiceEip", ...Array.from({ length: n - 1 }, (_x, i) => `ServiceEip${i + 2}`)];
  const byType = (t: string) => Object.keys(fromCfn).filter((k) => fromCfn[k].type === t).sort();
  expect(byType("AWS::EC2::EIP")).toEqual([...eips].sort());
  expect(byType("AWS::EC2::EIPAssociation")).toEqual(eips.map((e) => `${e}Association`).sort());
  eips.forEach((e, i) => expect(fromCfn[`${e}Association`].properties.PrivateIpAddress)
    .toBe(`\${Select:${i}:\${GetAtt:DataEniA.SecondaryPrivateIpAddresses}}`));
  expect(fromCfn.DataEniA.properties.SecondaryPrivateIpAddressCount).toBe(String(n));
  for (const inst of ["InstanceA", "InstanceB"]) {
    const p = fromCfn[inst].properties;
    expect(p.UserData["Fn::Base64"]).toContain('"service_ips": ["${Join:", ":${GetAtt:DataEniA.SecondaryPrivateIpAddresses}}"]');
    expect(p.Tags).toContainEqual({ Key: "eipgate:allocation-ids", Value: eips.map((e) => `\${GetAtt:${e}.AllocationId}`).join(",") });
  }
  // and the construct makes the same (the full comparison is above for 1, 3 and 8)
  const stack = new Stack(new App(), "Test");
  const pair = new EipgatePair(stack, "Pair", { ...BASE_CDK, serviceAddressCount: n });
  expect(pair.elasticIps.length).toBe(n);
  const fromCdk = normalizeCdk(Template.fromStack(stack).toJSON(), "Pair");
  expect(fromCdk.InstanceA).toEqual(fromCfn.InstanceA);
  expect(Object.keys(fromCdk).sort()).toEqual(Object.keys(fromCfn).sort());
});

test("translation logs: the IAM statement scoped to the group and the instance tag, only when enabled", () => {
  const statements = (r: Record<string, { properties: Json }>) => r.Role.properties.Policies[0].PolicyDocument.Statement as Json[];
  const on = evaluateCfn(cfnTemplate, { ...BASE_CFN, TranslationLogGroup: "/eipgate/translations" });
  const group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/eipgate/translations";
  expect(statements(on).filter((s) => s.Sid === "ShipTranslationLogs")).toEqual([{
    Sid: "ShipTranslationLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
    Resource: [group, `${group}:log-stream:*`],
  }]);
  expect(on.InstanceB.properties.Tags).toContainEqual({ Key: "eipgate:translation-log-group", Value: "/eipgate/translations" });
  const off = evaluateCfn(cfnTemplate, BASE_CFN);
  expect(JSON.stringify(statements(off))).not.toContain("logs:");
  expect(JSON.stringify(off.InstanceA.properties.Tags)).not.toContain("translation-log-group");
  const stack = new Stack(new App(), "Test");
  new EipgatePair(stack, "Pair", { ...BASE_CDK, translationLogGroup: "/eipgate/translations" });
  const fromCdk = normalizeCdk(Template.fromStack(stack).toJSON(), "Pair");
  expect(fromCdk.Role).toEqual(on.Role);
  expect(fromCdk.InstanceB).toEqual(on.InstanceB);
});

test("every template parameter has a counterpart in the cases", () => {
  const covered = new Set(CASES.flatMap((c) => Object.keys(c.cfn)));
  expect(Object.keys(cfnTemplate.Parameters).filter((p) => !covered.has(p))).toEqual([]);
});
