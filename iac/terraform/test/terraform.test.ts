// The Terraform module against ami/cloudformation/eipgate-pair.yaml, without a terraform binary:
// the .tf files parsed with @cdktf/hcl2json, and their variables, resources, IAM statements,
// security group rules, alarms, instance tags and user data compared with the template's.
// CloudFormation values are rewritten into the Terraform expressions they correspond to
// (Ref PairName -> ${var.pair_name}, Ref HaSecret -> ${aws_secretsmanager_secret.ha.arn}, ...),
// so most properties compare as exact strings. Not run: terraform validate/plan (README.md).
import { parse } from "@cdktf/hcl2json";
import * as fs from "fs";
import * as path from "path";
import { evaluateCfn, loadCfnTemplate } from "../../cdk/test/cfn";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const TF_DIR = path.resolve(__dirname, "..");
const cfn = loadCfnTemplate("eipgate-pair.yaml");
let tf: Json;

beforeAll(async () => {
  tf = { variable: {}, resource: {}, data: {}, locals: {}, output: {}, moved: [] };
  for (const f of fs.readdirSync(TF_DIR).filter((x) => x.endsWith(".tf")).sort()) {
    const doc = await parse(f, fs.readFileSync(path.join(TF_DIR, f), "utf8"));
    for (const [k, v] of Object.entries(doc as Record<string, Json>)) {
      if (k === "locals") for (const l of v) Object.assign(tf.locals, l);
      else if (k === "resource" || k === "data") for (const [t, byName] of Object.entries(v as Record<string, Json>)) {
        tf[k][t] = { ...(tf[k][t] ?? {}), ...byName };
      } else if (k === "variable" || k === "output") Object.assign(tf[k], v);
      else if (k === "moved") tf.moved.push(...(v as Json[]));
    }
  }
});

/** The Terraform resource block at an address ("type.name"). */
function res(address: string): Json {
  const [type, name] = address.split(".");
  const r = tf.resource[type]?.[name];
  if (!r) throw new Error(`no resource ${address}`);
  return r[0];
}

// --- names --------------------------------------------------------------------------------------
const SNAKE_EXCEPTIONS: Record<string, string> = { CloudWatchMetrics: "cloudwatch_metrics" };
function snake(name: string): string {
  return SNAKE_EXCEPTIONS[name] ?? name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/** CloudFormation logical id (or Fn::ForEach group) -> Terraform address (and for_each key). */
const RESOURCES: Record<string, { address: string; key?: string; counted?: boolean; index?: number }> = {
  HaSecret: { address: "aws_secretsmanager_secret.ha" },
  Role: { address: "aws_iam_role.this" },
  InstanceProfile: { address: "aws_iam_instance_profile.this" },
  DataSg: { address: "aws_security_group.data" },
  "Fn::ForEach::DataIngress": { address: "aws_vpc_security_group_ingress_rule.data_inside" },
  "Fn::ForEach::FallbackDataIngress": { address: "aws_vpc_security_group_ingress_rule.data_fallback" },
  DataSgIngressAll: { address: "aws_vpc_security_group_ingress_rule.data_untracked" },
  MgmtSg: { address: "aws_security_group.mgmt" },
  MgmtSgHeartbeatIn: { address: "aws_vpc_security_group_ingress_rule.mgmt_heartbeat_in" },
  MgmtSgHeartbeatOut: { address: "aws_vpc_security_group_egress_rule.mgmt_heartbeat_out" },
  MgmtSgSsh: { address: "aws_vpc_security_group_ingress_rule.mgmt_ssh" },
  MgmtEniA: { address: "aws_network_interface.mgmt_a" },
  MgmtEniB: { address: "aws_network_interface.mgmt_b" },
  DataEniA: { address: "aws_network_interface.data_a" },
  DataEniB: { address: "aws_network_interface.data_b" },
  // service address n (ServiceEip, ServiceEip2..8) <-> aws_eip.service[n-1] (count = service_address_count)
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7, 8].flatMap((n) => {
    const id = n === 1 ? "ServiceEip" : `ServiceEip${n}`;
    return [[id, { address: "aws_eip.service", index: n - 1 }], [`${id}Association`, { address: "aws_eip_association.service", index: n - 1 }]];
  })),
  BpaExclusionPublicSubnet: { address: "aws_vpc_block_public_access_exclusion.public_subnet", counted: true },
  MgmtEipA: { address: "aws_eip.mgmt_a", counted: true },
  MgmtEipAAssociation: { address: "aws_eip_association.mgmt_a" },
  MgmtEipB: { address: "aws_eip.mgmt_b", counted: true },
  MgmtEipBAssociation: { address: "aws_eip_association.mgmt_b" },
  LaunchTemplate: { address: "aws_launch_template.this" },
  InstanceA: { address: "aws_instance.a" },
  InstanceB: { address: "aws_instance.b" },
  RecoverA: { address: "aws_cloudwatch_metric_alarm.recover", key: "A" },
  RecoverB: { address: "aws_cloudwatch_metric_alarm.recover", key: "B" },
  PortAllocationErrorsAlarm: { address: "aws_cloudwatch_metric_alarm.eipgate", key: "port-allocation-errors" },
  DropsAlarm: { address: "aws_cloudwatch_metric_alarm.eipgate", key: "drops" },
  NoActiveAlarm: { address: "aws_cloudwatch_metric_alarm.eipgate", key: "no-active" },
  NoStandbyAlarm: { address: "aws_cloudwatch_metric_alarm.eipgate", key: "no-standby" },
  FailoverAlarm: { address: "aws_cloudwatch_metric_alarm.eipgate", key: "failover" },
  "Fn::ForEach::Routes": { address: "aws_route.default" },
};
const TYPES: Record<string, string> = {
  "AWS::SecretsManager::Secret": "aws_secretsmanager_secret",
  "AWS::IAM::Role": "aws_iam_role",
  "AWS::IAM::InstanceProfile": "aws_iam_instance_profile",
  "AWS::EC2::SecurityGroup": "aws_security_group",
  "AWS::EC2::SecurityGroupIngress": "aws_vpc_security_group_ingress_rule",
  "AWS::EC2::SecurityGroupEgress": "aws_vpc_security_group_egress_rule",
  "AWS::EC2::NetworkInterface": "aws_network_interface",
  "AWS::EC2::EIP": "aws_eip",
  "AWS::EC2::EIPAssociation": "aws_eip_association",
  "AWS::EC2::LaunchTemplate": "aws_launch_template",
  "AWS::EC2::Instance": "aws_instance",
  "AWS::CloudWatch::Alarm": "aws_cloudwatch_metric_alarm",
  "AWS::EC2::Route": "aws_route",
  "AWS::EC2::VPCBlockPublicAccessExclusion": "aws_vpc_block_public_access_exclusion",
};
/** Terraform-only resources: what CloudFormation does inside one resource. */
const TF_EXTRAS = new Set([
  "random_password.ha", "aws_secretsmanager_secret_version.ha", // GenerateSecretString
  "aws_iam_role_policy.control", "aws_iam_role_policy_attachment.ssm", // Policies, ManagedPolicyArns
  "aws_vpc_security_group_egress_rule.data_all", "aws_vpc_security_group_egress_rule.mgmt_https",
  "aws_vpc_security_group_egress_rule.mgmt_http", "aws_vpc_security_group_egress_rule.mgmt_ntp", // SecurityGroupEgress
  "aws_vpc_security_group_egress_rule.mgmt_https6", "aws_vpc_security_group_egress_rule.mgmt_http6", // its Fn::If rules
]);
// What Ref and Fn::GetAtt of a CloudFormation resource are in Terraform.
const REF_ATTR: Record<string, string> = {
  "AWS::SecretsManager::Secret": "arn", "AWS::EC2::NetworkInterface": "id", "AWS::EC2::Instance": "id",
  "AWS::EC2::SecurityGroup": "id", "AWS::EC2::LaunchTemplate": "id", "AWS::EC2::EIP": "public_ip", "AWS::IAM::Role": "name",
};
const GETATT: Record<string, string> = {
  PrimaryPrivateIpAddress: "private_ip", AvailabilityZone: "availability_zone", Arn: "arn", AllocationId: "allocation_id",
  LatestVersionNumber: "latest_version",
};
const PSEUDO: Record<string, string> = {
  "AWS::Partition": "${data.aws_partition.current.partition}",
  "AWS::Region": "${data.aws_region.current.name}",
  "AWS::AccountId": "${data.aws_caller_identity.current.account_id}",
};

function tfRef(logicalId: string, attr?: string): string {
  const m = RESOURCES[logicalId];
  const r = cfn.Resources[logicalId];
  if (!m || !r) throw new Error(`no mapping for ${logicalId}`);
  const a = attr === undefined ? REF_ATTR[r.Type] : GETATT[attr];
  if (!a) throw new Error(`no Terraform attribute for ${logicalId}.${attr ?? "Ref"}`);
  return "${" + m.address + (m.counted ? "[0]" : m.index !== undefined ? `[${m.index}]` : "") + "." + a + "}";
}

/** A CloudFormation value as the Terraform expression string it corresponds to. */
function canon(node: Json, forEach?: string): Json {
  if (Array.isArray(node)) return node.map((x) => canon(x, forEach));
  if (node === null || typeof node !== "object") return node;
  const keys = Object.keys(node);
  if (keys.length !== 1) return Object.fromEntries(keys.map((k) => [k, canon(node[k], forEach)]));
  const [k] = keys;
  const v = node[k];
  const ref = (name: string): string => {
    if (name === forEach) return "${each.value}";
    if (name in PSEUDO) return PSEUDO[name];
    if (name in cfn.Parameters) return "${var." + snake(name) + "}";
    if (name.includes(".")) { const [r, a] = name.split("."); return tfRef(r, a); }
    return tfRef(name);
  };
  switch (k) {
    case "Ref": return ref(v);
    case "Fn::GetAtt": return tfRef(v[0], v[1]);
    case "Fn::Sub": {
      if (typeof v !== "string") throw new Error("Fn::Sub with variables: use userData()");
      return v.replace(/\$\{([^}]+)\}/g, (_m, name: string) => ref(name));
    }
    case "Fn::Join":
      if (v[1].Ref && cfn.Parameters[v[1].Ref]?.Type === "CommaDelimitedList") {
        return "${join(" + JSON.stringify(v[0]) + ", var." + snake(v[1].Ref) + ")}";
      }
      // the EIPs' allocation ids: ServiceEip's, then ServiceEipN's under HasAddrN, in order
      if (JSON.stringify(v) === JSON.stringify([",", [{ "Fn::GetAtt": ["ServiceEip", "AllocationId"] },
        ...[2, 3, 4, 5, 6, 7, 8].map((n) => ({ "Fn::If": [`HasAddr${n}`, { "Fn::GetAtt": [`ServiceEip${n}`, "AllocationId"] }, { Ref: "AWS::NoValue" }] }))]])) {
        return '${join(",", aws_eip.service[*].allocation_id)}';
      }
      break;
    case "Fn::Select":
      if (JSON.stringify(v[1]) === JSON.stringify({ "Fn::GetAtt": ["DataEniA", "SecondaryPrivateIpAddresses"] })) {
        return `\${local.service_ips[${v[0]}]}`;
      }
      break;
  }
  return { [k]: canon(v, forEach) };
}

/** A Terraform string with ${local.x} expanded where local x is a plain template (arn_prefix). */
function expandLocals(s: Json): Json {
  if (typeof s !== "string") return s;
  return s.replace(/\$\{local\.([a-z_]+)\}/g, (m, name: string) => {
    const l = tf.locals[name];
    return typeof l === "string" && !l.startsWith("${") ? l : m;
  });
}

/** Variables an expression depends on, through locals. */
function varsOf(expr: Json, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  const s = typeof expr === "string" ? expr : JSON.stringify(expr ?? "");
  for (const m of s.matchAll(/\bvar\.([a-z0-9_]+)/g)) out.add(m[1]);
  for (const m of s.matchAll(/\blocal\.([a-z0-9_]+)/g)) {
    const l = tf.locals[m[1]];
    if (seen.has(m[1]) || typeof l !== "string") continue; // object locals (alarms, tags) are data, not conditions
    seen.add(m[1]);
    varsOf(l, seen).forEach((x) => out.add(x));
  }
  return out;
}

/** Parameters a CloudFormation condition depends on. */
function paramsOfCondition(name: string | undefined): Set<string> {
  const out = new Set<string>();
  if (name === undefined) return out;
  const walk = (n: Json) => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === "object") {
      for (const [k, v] of Object.entries(n)) {
        if (k === "Ref" && typeof v === "string" && v in cfn.Parameters) out.add(snake(v));
        else if (k === "Condition" && typeof v === "string") paramsOfCondition(v).forEach((x) => out.add(x));
        else walk(v);
      }
    }
  };
  walk(cfn.Conditions[name]);
  return out;
}

function tagsOf(cfnTags: Json[], forEach?: string): Record<string, Json> {
  return Object.fromEntries(cfnTags.filter((t) => !t["Fn::If"]).map((t) => [t.Key, canon(t.Value, forEach)]));
}

// --- tests --------------------------------------------------------------------------------------
describe("variables = the template's parameters", () => {
  test("same names (snake_case)", () => {
    expect(Object.keys(tf.variable).sort()).toEqual(Object.keys(cfn.Parameters).map(snake).sort());
  });

  test.each(Object.keys(cfn.Parameters))("%s: type, default and allowed values", (name) => {
    const p = cfn.Parameters[name];
    const v = tf.variable[snake(name)][0];
    const isBool = JSON.stringify(p.AllowedValues) === JSON.stringify(["true", "false"]);
    const wantType = p.Type === "CommaDelimitedList" ? "${list(string)}" : isBool ? "bool" : p.Type === "Number" ? "number" : "string";
    expect(v.type.replace(/^\$\{(bool|number|string)\}$/, "$1")).toBe(wantType);
    if (p.Default === undefined) {
      expect(v.default).toBeUndefined();
    } else {
      const want = p.Type === "CommaDelimitedList" ? (p.Default === "" ? [] : p.Default.split(","))
        : isBool ? p.Default === "true" : p.Type === "Number" ? Number(p.Default) : p.Default;
      expect(v.default).toEqual(want);
    }
    const conditions = (v.validation ?? []).map((x: Json) => x.condition).join("\n");
    if (p.AllowedValues && !isBool) {
      const m = conditions.match(/contains\(\[([^\]]*)\]/);
      expect(m).not.toBeNull();
      expect(JSON.parse("[" + m![1] + "]")).toEqual(p.AllowedValues);
    }
    if (p.AllowedPattern) {
      const m = conditions.match(/regex\("((?:[^"\\]|\\.)*)"/);
      expect(m).not.toBeNull();
      expect(["^" + p.AllowedPattern + "$", "^(" + p.AllowedPattern + ")$"]).toContain(JSON.parse('"' + m![1] + '"'));
    }
    if (p.MinValue !== undefined) expect(conditions).toContain(`var.${snake(name)} >= ${p.MinValue}`);
  });
});

describe("resources", () => {
  test("every template resource has its Terraform counterpart of the matching type, and nothing else", () => {
    expect(Object.keys(cfn.Resources).sort()).toEqual(Object.keys(RESOURCES).sort());
    const expected = new Set<string>(TF_EXTRAS);
    for (const [id, m] of Object.entries(RESOURCES)) {
      const r = cfn.Resources[id];
      const type = Array.isArray(r) ? Object.values(r[2] as Record<string, Json>)[0].Type : r.Type;
      expect(m.address.split(".")[0]).toBe(TYPES[type]);
      res(m.address);
      expected.add(m.address);
    }
    const actual = Object.entries(tf.resource as Record<string, Json>).flatMap(([t, byName]) => Object.keys(byName).map((n) => `${t}.${n}`));
    expect(actual.sort()).toEqual([...expected].sort());
  });

  test.each(Object.keys(RESOURCES))("%s: created under the same inputs (condition / for_each)", (id) => {
    const m = RESOURCES[id];
    const r = res(m.address);
    const raw = cfn.Resources[id];
    if (Array.isArray(raw)) {
      // Fn::ForEach over a list parameter <-> for_each = toset(var.<list>)
      expect(r.for_each).toBe(`\${toset(var.${snake(raw[1].Ref)})}`);
      return;
    }
    const expr = r.count ?? r.for_each;
    if (m.index !== undefined) {
      // service address n exists when ServiceAddressCount >= n (HasAddrN) <-> count = service_address_count
      expect(r.count).toBe("${var.service_address_count}");
      expect(raw.Condition).toBe(m.index === 0 ? undefined : `HasAddr${m.index + 1}`);
      expect([...paramsOfCondition(raw.Condition)].filter((x) => x !== "service_address_count")).toEqual([]);
      return;
    }
    if (m.key !== undefined) {
      // one for_each resource for several template resources: the key exists, the condition matches
      const keys = typeof r.for_each === "object" ? Object.keys(r.for_each) : r.for_each.includes("local.alarms") ? Object.keys(tf.locals.alarms) : [];
      expect(keys).toContain(m.key);
    } else if (raw.Condition === undefined) {
      expect(expr).toBeUndefined();
    }
    expect([...varsOf(expr)].sort()).toEqual([...paramsOfCondition(raw.Condition)].sort());
  });

  test.each([1, 2, 3, 4, 5, 6, 7, 8])("ServiceAddressCount %d: that many service EIPs and associations (count)", (n) => {
    const made = evaluateCfn(cfn, {
      PairName: "p", VpcId: "vpc-1", PublicSubnetId: "subnet-1", PrivateRouteTableIds: "rtb-1", InsidePrefixes: "10.0.128.0/20",
      ImageId: "ami-1", ServiceAddressCount: String(n),
    });
    const count = (t: string) => Object.values(made).filter((r) => r.type === t).length;
    expect([count("AWS::EC2::EIP"), count("AWS::EC2::EIPAssociation")]).toEqual([n, n]);
  });

  test("the one-address module's service EIP and association keep their state (moved to index 0)", () => {
    expect(tf.moved).toEqual(expect.arrayContaining([
      { from: "${aws_eip.service}", to: "${aws_eip.service[0]}" },
      { from: "${aws_eip_association.service}", to: "${aws_eip_association.service[0]}" },
    ]));
  });

  test("the template's Rules on service addresses per instance type <-> the data ENI's precondition", () => {
    const limits: Record<string, number> = {};
    for (const [name, rule] of Object.entries(cfn.Rules as Record<string, Json>)) {
      if (!name.startsWith("ServiceAddressesFit")) continue;
      const c = rule.RuleCondition;
      const types: string[] = c["Fn::Contains"] ? c["Fn::Contains"][0] : [c["Fn::Equals"][1]];
      const over: string[] = rule.Assertions[0].Assert["Fn::Not"][0]["Fn::Contains"][0];
      expect(over).toEqual(Array.from({ length: 8 - Number(over[0]) + 1 }, (_x, i) => String(Number(over[0]) + i)));
      for (const t of types) limits[t] = Number(over[0]) - 1;
    }
    expect(tf.locals.service_address_limits).toEqual(limits);
    const pre = res("aws_network_interface.data_a").lifecycle[0].precondition[0].condition;
    expect(pre).toBe("${var.service_address_count <= lookup(local.service_address_limits, var.instance_type, 8)}");
  });

  test("alarm keys are the template's alarm names", () => {
    const names = Object.values(cfn.Resources as Record<string, Json>)
      .filter((r) => r.Type === "AWS::CloudWatch::Alarm" && r.Properties.Namespace === "eipgate")
      .map((r) => r.Properties.AlarmName["Fn::Sub"].replace("eipgate-${PairName}-", ""));
    expect(Object.keys(tf.locals.alarms).sort()).toEqual(names.sort());
  });
});

describe("IAM", () => {
  function cfnStatements(): { st: Json; cond: Set<string> }[] {
    const out: { st: Json; cond: Set<string> }[] = [];
    for (const s of cfn.Resources.Role.Properties.Policies[0].PolicyDocument.Statement) {
      if (s["Fn::If"]) out.push({ st: s["Fn::If"][1], cond: paramsOfCondition(s["Fn::If"][0]) });
      else out.push({ st: s, cond: new Set() });
    }
    return out;
  }
  function tfStatements(): { st: Json; cond: Set<string> }[] {
    const doc = tf.data.aws_iam_policy_document.control[0];
    return [
      ...doc.statement.map((st: Json) => ({ st, cond: new Set<string>() })),
      ...doc.dynamic.statement.map((d: Json) => ({ st: d.content[0], cond: varsOf(d.for_each) })),
    ];
  }
  const list = (x: Json) => [x].flat().map(String);

  test("the same statements (Sid, effect, actions, resources, conditions), under the same inputs", () => {
    const want = cfnStatements().map(({ st, cond }) => ({
      sid: st.Sid, effect: st.Effect, actions: list(st.Action).sort(), resources: list(canon(st.Resource)),
      conditions: Object.entries(st.Condition ?? {}).flatMap(([test, kv]) => Object.entries(kv as Json).map(([variable, value]) =>
        ({ test, variable, values: [canon(value)].flat() }))).sort((a, b) => a.variable.localeCompare(b.variable)),
      when: [...cond].sort(),
    }));
    const got = tfStatements().map(({ st, cond }) => ({
      sid: st.sid, effect: st.effect, actions: [...st.actions].sort(), resources: st.resources.map(expandLocals),
      conditions: (st.condition ?? []).map((c: Json) => ({ test: c.test, variable: c.variable, values: c.values }))
        .sort((a: Json, b: Json) => a.variable.localeCompare(b.variable)),
      when: [...cond].sort(),
    }));
    const bySid = (a: Json, b: Json) => a.sid.localeCompare(b.sid);
    expect(got.sort(bySid)).toEqual(want.sort(bySid));
    expect(want.map((s) => s.sid)).toContain("PutMetricDataEipgateNamespace");
  });

  test("trust policy and the SSM managed policy", () => {
    const trust = cfn.Resources.Role.Properties.AssumeRolePolicyDocument.Statement[0];
    const st = tf.data.aws_iam_policy_document.assume[0].statement[0];
    expect(st.actions).toEqual([trust.Action]);
    expect(st.principals[0]).toEqual({ type: "Service", identifiers: [trust.Principal.Service] });
    const managed = cfn.Resources.Role.Properties.ManagedPolicyArns["Fn::If"];
    const att = res("aws_iam_role_policy_attachment.ssm");
    expect(att.policy_arn).toBe(canon(managed[1][0]));
    expect([...varsOf(att.count)]).toEqual([...paramsOfCondition(managed[0])]);
    expect(res("aws_iam_role_policy.control").policy).toBe("${data.aws_iam_policy_document.control.json}");
  });
});

describe("security groups", () => {
  const SG: Record<string, string> = { "${aws_security_group.data.id}": "data", "${aws_security_group.mgmt.id}": "mgmt" };
  const rule = (group: string, dir: string, proto: Json, from: Json, to: Json, peer: Json, description: Json) =>
    JSON.stringify({ group, dir, proto: String(proto), from: from === undefined ? "" : String(from), to: to === undefined ? "" : String(to), peer, description: description ?? "" });

  test("the same rules (protocol, ports, peer, description)", () => {
    const want: string[] = [];
    const conditional: [string, number, string][] = [];
    for (const [id, raw] of Object.entries(cfn.Resources as Record<string, Json>)) {
      const [forEach, r] = Array.isArray(raw) ? [raw[0], Object.values(raw[2])[0] as Json] : [undefined, raw];
      const p = r.Properties;
      if (r.Type === "AWS::EC2::SecurityGroup") {
        for (const item of p.SecurityGroupEgress) {
          // an Fn::If rule (ManagementAccess=Ipv6): its rule, and the Terraform one is counted on the same inputs
          const e = item["Fn::If"] ? item["Fn::If"][1] : item;
          want.push(rule(SG[tfRef(id)], "egress", e.IpProtocol, e.FromPort, e.ToPort, canon(e.CidrIp ?? e.CidrIpv6), e.Description));
          if (item["Fn::If"]) conditional.push([e.CidrIpv6, e.FromPort, item["Fn::If"][0]]);
        }
      } else if (r.Type === "AWS::EC2::SecurityGroupIngress" || r.Type === "AWS::EC2::SecurityGroupEgress") {
        const peer = p.CidrIp !== undefined ? canon(p.CidrIp, forEach) : "sg:" + SG[canon(p.SourceSecurityGroupId ?? p.DestinationSecurityGroupId)];
        want.push(rule(SG[canon(p.GroupId)], r.Type.endsWith("Ingress") ? "ingress" : "egress", p.IpProtocol, p.FromPort, p.ToPort, peer, p.Description));
      }
    }
    const got: string[] = [];
    for (const dir of ["ingress", "egress"]) {
      for (const blocks of Object.values((tf.resource[`aws_vpc_security_group_${dir}_rule`] ?? {}) as Record<string, Json[]>)) {
        const r = blocks[0];
        const peer = r.cidr_ipv4 ?? r.cidr_ipv6 ?? "sg:" + SG[r.referenced_security_group_id];
        got.push(rule(SG[r.security_group_id], dir, r.ip_protocol, r.from_port, r.to_port, peer, r.description));
      }
    }
    expect(got.sort()).toEqual(want.sort());
    expect(want.length).toBe(12);
    expect(conditional.length).toBe(2);
    for (const [cidr, port, cond] of conditional) {
      const r = Object.values(tf.resource.aws_vpc_security_group_egress_rule as Record<string, Json[]>)
        .map((b) => b[0]).find((x) => x.cidr_ipv6 === cidr && Number(x.from_port) === port);
      expect([...varsOf(r.count)].sort()).toEqual([...paramsOfCondition(cond)].sort());
    }
  });

  test("groups: description, VPC, tags", () => {
    for (const [id, addr] of [["DataSg", "aws_security_group.data"], ["MgmtSg", "aws_security_group.mgmt"]]) {
      const p = cfn.Resources[id].Properties;
      const r = res(addr);
      expect(r.description).toBe(canon(p.GroupDescription));
      expect(r.vpc_id).toBe(canon(p.VpcId));
      expect(r.tags).toEqual(tagsOf(p.Tags));
    }
  });
});

describe("ENIs, addresses, instances, routes", () => {
  test("ENIs: subnet, security group, source/dest check, the secondary IP, tags", () => {
    for (const id of ["MgmtEniA", "MgmtEniB", "DataEniA", "DataEniB"]) {
      const p = cfn.Resources[id].Properties;
      const r = res(RESOURCES[id].address);
      expect(r.subnet_id).toBe(canon(p.SubnetId));
      expect(r.security_groups).toEqual(canon(p.GroupSet));
      expect(r.source_dest_check).toEqual(p.SourceDestCheck);
      expect(r.private_ips_count).toEqual(p.SecondaryPrivateIpAddressCount && canon(p.SecondaryPrivateIpAddressCount));
      if (p.Ipv6AddressCount) {
        // Fn::If [Ipv6Mgmt, 1, NoValue] <-> local.ipv6_mgmt ? 1 : null
        expect(p.Ipv6AddressCount["Fn::If"][1]).toBe(1);
        expect([...varsOf(r.ipv6_address_count)]).toEqual([...paramsOfCondition(p.Ipv6AddressCount["Fn::If"][0])]);
      } else {
        expect(r.ipv6_address_count).toBeUndefined();
      }
      expect(r.description).toBe(canon(p.Description));
      expect(r.tags).toEqual(tagsOf(p.Tags));
    }
  });

  test("VPC Block Public Access exclusion: the public subnet, the mode, tags", () => {
    const p = cfn.Resources.BpaExclusionPublicSubnet.Properties;
    const r = res("aws_vpc_block_public_access_exclusion.public_subnet");
    expect(r.subnet_id).toBe(canon(p.SubnetId));
    expect(r.internet_gateway_exclusion_mode).toBe(canon(p.InternetGatewayExclusionMode));
    expect(r.tags).toEqual(tagsOf(p.Tags));
  });

  test("EIPs and their associations", () => {
    for (const id of ["MgmtEipA", "MgmtEipB"]) {
      const r = res(RESOURCES[id].address);
      expect(r.domain).toBe(cfn.Resources[id].Properties.Domain);
      expect(r.tags).toEqual(tagsOf(cfn.Resources[id].Properties.Tags));
    }
    // service address n: aws_eip.service[n-1] and its association, with count.index = n-1
    for (const [id, m] of Object.entries(RESOURCES).filter(([, x]) => x.index !== undefined)) {
      const at = (x: Json) => JSON.parse(JSON.stringify(x)
        .replace(/%\{if count\.index == 0\}%\{else\}-\$\{count\.index \+ 1\}%\{endif\}/g, m.index === 0 ? "" : `-${m.index! + 1}`)
        .replace(/\[count\.index\]/g, `[${m.index}]`));
      const p = cfn.Resources[id].Properties;
      const r = at(res(m.address));
      if (m.address === "aws_eip.service") {
        expect(r.domain).toBe(p.Domain);
        expect(r.tags).toEqual(tagsOf(p.Tags));
      } else {
        expect(r.allocation_id).toBe(canon(p.AllocationId));
        expect(r.network_interface_id).toBe(canon(p.NetworkInterfaceId));
        expect(r.private_ip_address).toBe(canon(p.PrivateIpAddress));
      }
    }
    for (const id of ["MgmtEipAAssociation", "MgmtEipBAssociation"]) {
      const p = cfn.Resources[id].Properties;
      const r = res(RESOURCES[id].address);
      expect(r.allocation_id).toBe(canon(p.AllocationId));
      expect(r.network_interface_id).toBe(canon(p.NetworkInterfaceId));
      expect(r.private_ip_address).toEqual(p.PrivateIpAddress && canon(p.PrivateIpAddress));
    }
  });

  test("launch template: image, type, profile, IMDSv2 with tags, monitoring, instance tags", () => {
    const d = cfn.Resources.LaunchTemplate.Properties.LaunchTemplateData;
    const r = res("aws_launch_template.this");
    expect(r.image_id).toBe(canon(d.ImageId));
    expect(r.instance_type).toBe(canon(d.InstanceType));
    expect(r.iam_instance_profile[0].arn).toBe(canon(d.IamInstanceProfile.Arn));
    const md = d.MetadataOptions;
    expect(r.metadata_options[0]).toEqual({
      http_endpoint: md.HttpEndpoint, http_tokens: md.HttpTokens, http_put_response_hop_limit: md.HttpPutResponseHopLimit,
      instance_metadata_tags: md.InstanceMetadataTags,
    });
    expect(r.monitoring[0].enabled).toBe(d.Monitoring.Enabled);
    expect(r.tag_specifications[0].resource_type).toBe(d.TagSpecifications[0].ResourceType);
    expect(r.tag_specifications[0].tags).toEqual(tagsOf(d.TagSpecifications[0].Tags));
    expect(varsOf(r.key_name)).toEqual(new Set(["key_name"]));
  });

  /** The template's user data JSON with each ${X} as the Terraform expression it corresponds to. */
  function userData(id: string): Json {
    const [text, vars] = cfn.Resources[id].Properties.UserData["Fn::Base64"]["Fn::Sub"];
    const placeholders: Record<string, Json> = {};
    const json = JSON.parse(text.replace(/\$\{([^}]+)\}/g, (_m: string, name: string) => {
      placeholders[`@${name}@`] = name in vars ? vars[name] : { Ref: name };
      return `@${name}@`;
    }));
    const sub = (n: Json): Json => {
      if (Array.isArray(n)) {
        // ["${Prefixes}"] with Prefixes = Join('", "', list): the whole list
        const j = n.length === 1 && placeholders[n[0]]?.["Fn::Join"];
        if (j && j[0] === '", "' && JSON.stringify(j[1]) === JSON.stringify({ "Fn::GetAtt": ["DataEniA", "SecondaryPrivateIpAddresses"] })) {
          return "${local.service_ips}"; // every service address
        }
        if (j && j[0] === '", "') return "${var." + snake(j[1].Ref) + "}";
        return n.map(sub);
      }
      if (n && typeof n === "object") return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, sub(v)]));
      if (typeof n === "string" && n in placeholders) return canon(placeholders[n]);
      return n;
    };
    return sub(json);
  }

  test.each([["InstanceA", "a"], ["InstanceB", "b"]])("%s: user data, tags, ENIs, launch template", (id, ab) => {
    const p = cfn.Resources[id].Properties;
    const r = res(`aws_instance.${ab}`);
    expect(tf.locals.user_data[ab]).toEqual(userData(id));
    expect(r.user_data).toBe(`\${jsonencode(local.user_data["${ab}"])}`);
    // tags: the unconditional ones, and the fallback / translation log ones under their condition
    expect(tf.locals.instance_tags[ab]).toEqual(tagsOf(p.Tags));
    const conditional = p.Tags.filter((t: Json) => t["Fn::If"]).map((t: Json) => t["Fn::If"]);
    const groups: Record<string, string> = { HasFallback: "fallback_tag", TranslationLogs: "translation_log_tag" };
    expect([...new Set(conditional.map((c: Json) => c[0]))].sort()).toEqual(Object.keys(groups).sort());
    for (const [cond, local] of Object.entries(groups)) {
      const mine = conditional.filter((c: Json) => c[0] === cond);
      expect(Object.fromEntries(mine.map((c: Json) => [c[1].Key, canon(c[1].Value)]))).toEqual(tf.locals[`${local}_values`]);
      expect(varsOf(tf.locals[`${local}s`])).toEqual(paramsOfCondition(cond));
    }
    expect(r.tags).toBe(`\${merge(local.instance_tags["${ab}"], local.fallback_tags, local.translation_log_tags)}`);
    expect(r.network_interface).toEqual(p.NetworkInterfaces.map((n: Json) => ({
      device_index: Number(n.DeviceIndex), network_interface_id: canon(n.NetworkInterfaceId),
    })));
    expect(r.launch_template[0]).toEqual({ id: canon(p.LaunchTemplate.LaunchTemplateId), version: canon(p.LaunchTemplate.Version) });
    const deps = cfn.Resources[id].DependsOn;
    expect(r.depends_on ?? []).toEqual(deps ? ["${" + RESOURCES[deps].address + "}"] : []);
  });

  test("the fallback's Rules: all three lists or none (precondition)", () => {
    const rule = JSON.stringify(cfn.Rules.FallbackComplete);
    const vars = varsOf(res("aws_instance.a").lifecycle[0].precondition[0].condition);
    for (const p of ["FallbackForRouteTableIds", "FallbackForInstanceIds", "FallbackForInsidePrefixes"]) {
      expect(rule).toContain(p);
      expect(vars.has(snake(p))).toBe(true);
    }
  });

  test("routes: 0.0.0.0/0 to A's data ENI after A exists; failover changes ignored", () => {
    const [ident, , body] = cfn.Resources["Fn::ForEach::Routes"];
    const c = Object.values(body as Record<string, Json>)[0];
    const r = res("aws_route.default");
    expect(r.route_table_id).toBe(canon(c.Properties.RouteTableId, ident));
    expect(r.destination_cidr_block).toBe(c.Properties.DestinationCidrBlock);
    expect(r.network_interface_id).toBe(canon(c.Properties.NetworkInterfaceId));
    expect(r.depends_on).toEqual(["${" + RESOURCES[c.DependsOn].address + "}"]);
  });

  test("what eipgate-control changes on failover is ignore_changes (or the next apply undoes a failover)", () => {
    const ignored = (addr: string) => (res(addr).lifecycle?.[0]?.ignore_changes ?? []).map((x: string) => x.replace(/^\$\{(.*)\}$/, "$1"));
    expect(ignored("aws_route.default")).toContain("network_interface_id");
    expect(ignored("aws_eip_association.service")).toContain("network_interface_id");
    // a count changed after creation is refused with a reason, not planned half-way
    expect(res("aws_eip_association.service").lifecycle[0].precondition[0].condition)
      .toBe("${length(local.service_ips) == var.service_address_count}");
    for (const eni of ["aws_network_interface.data_a", "aws_network_interface.data_b"]) {
      expect(ignored(eni)).toEqual(expect.arrayContaining(["private_ips", "private_ips_count"]));
    }
    // the service IPs are looked up on both data ENIs (after a failover A's has none), sorted
    expect(tf.locals.service_ips).toMatch(/^\$\{sort\(/);
    expect(tf.locals.service_ips).toContain("aws_network_interface.data_a.private_ips");
    expect(tf.locals.service_ips).toContain("aws_network_interface.data_b.private_ips");
  });

  test("HA secret: name, description, 64 characters without punctuation", () => {
    const p = cfn.Resources.HaSecret.Properties;
    const r = res("aws_secretsmanager_secret.ha");
    expect(r.name).toBe(canon(p.Name));
    expect(r.description).toBe(canon(p.Description));
    expect(r.tags).toEqual(tagsOf(p.Tags));
    const pw = res("random_password.ha");
    expect(pw.length).toBe(p.GenerateSecretString.PasswordLength);
    expect(pw.special).toBe(!p.GenerateSecretString.ExcludePunctuation);
  });
});

describe("alarms", () => {
  test.each(Object.entries(RESOURCES).filter(([, m]) => m.key && m.address.endsWith(".eipgate")))(
    "%s: metric, statistic, periods, threshold, missing data, dimensions, actions",
    (id, m) => {
      const p = cfn.Resources[id].Properties;
      const def = tf.locals.alarms[m.key!];
      const r = res(m.address);
      const each = (x: string) => x.replace(/\$\{each\.value\.([a-z]+)\}/, (_m, k) => def[k]).replace("${each.key}", m.key!);
      expect(each(r.alarm_name)).toBe(canon(p.AlarmName));
      expect(each(r.alarm_description)).toBe(canon(p.AlarmDescription));
      expect(r.namespace).toBe(p.Namespace);
      expect(each(r.metric_name)).toBe(p.MetricName);
      expect(each(r.statistic)).toBe(p.Statistic);
      expect(def.period).toBe(p.Period);
      expect(r.period).toBe("${each.value.period}");
      expect(def.evaluations).toBe(p.EvaluationPeriods);
      expect(def.evaluations).toBe(p.DatapointsToAlarm);
      expect([r.evaluation_periods, r.datapoints_to_alarm]).toEqual(["${each.value.evaluations}", "${each.value.evaluations}"]);
      expect(each(r.comparison_operator)).toBe(p.ComparisonOperator);
      expect(String(def.threshold)).toBe(String(canon(p.Threshold)));
      expect(r.threshold).toBe("${each.value.threshold}");
      expect(each(r.treat_missing_data)).toBe(p.TreatMissingData);
      expect(r.dimensions).toEqual(Object.fromEntries(p.Dimensions.map((d: Json) => [d.Name, canon(d.Value)])));
      const [cond, then] = p.AlarmActions["Fn::If"];
      expect(r.alarm_actions).toBe(`\${local.has_topic ? [${canon(then[0]).slice(2, -1)}] : []}`);
      expect([...varsOf(r.alarm_actions)]).toEqual([...paramsOfCondition(cond)].filter((x) => x !== "cloudwatch_metrics"));
    });

  test.each(["RecoverA", "RecoverB"])("%s: EC2 auto-recovery", (id) => {
    const p = cfn.Resources[id].Properties;
    const r = res("aws_cloudwatch_metric_alarm.recover");
    const key = RESOURCES[id].key!;
    expect(r.alarm_description.replace("${each.key}", key)).toBe(canon(p.AlarmDescription));
    expect([r.namespace, r.metric_name, r.statistic, r.period, r.evaluation_periods, r.threshold, r.comparison_operator])
      .toEqual([p.Namespace, p.MetricName, p.Statistic, p.Period, p.EvaluationPeriods, p.Threshold, p.ComparisonOperator]);
    expect(r.alarm_actions).toEqual(canon(p.AlarmActions));
    expect(r.for_each[key]).toBe(canon(p.Dimensions[0].Value));
    expect(r.dimensions).toEqual({ [p.Dimensions[0].Name]: "${each.value}" });
  });
});

test("IAM name prefixes fit IAM's 38 characters with the longest pair name", () => {
  const longest = "a".repeat(31); // PairName's AllowedPattern: up to 31 characters
  expect(cfn.Parameters.PairName.AllowedPattern).toBe("[a-z0-9][a-z0-9-]{0,30}");
  for (const addr of ["aws_iam_role.this", "aws_iam_instance_profile.this"]) {
    const m = res(addr).name_prefix.match(/^\$\{substr\("(.*)", 0, (\d+)\)\}$/);
    expect(m).not.toBeNull();
    expect(Math.min(m[1].replace("${var.pair_name}", longest).length, Number(m[2]))).toBeLessThanOrEqual(38);
  }
});

test("outputs: the template's, in snake_case", () => {
  expect(Object.keys(tf.output).sort()).toEqual(Object.keys(cfn.Outputs).map(snake).sort());
});
