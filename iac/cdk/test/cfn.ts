// Loads ami/cloudformation/*.yaml (through the project's own loader in validate.py, which knows
// CloudFormation's short-form tags) and evaluates a template for given parameter values into the
// resources it would create: Fn::ForEach expanded, Conditions and Fn::If decided, parameters
// substituted. normalize() brings a CDK-synthesized template to the same form, so the two can be
// compared resource by resource.
import { execFileSync } from "child_process";
import * as path from "path";

export const REPO = path.resolve(__dirname, "../../..");
export const CFN_DIR = path.join(REPO, "ami/cloudformation");

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export function loadCfnTemplate(name: string): Json {
  const script =
    "import importlib.machinery, importlib.util, json, sys\n" +
    "l = importlib.machinery.SourceFileLoader('validate', sys.argv[1])\n" +
    "m = importlib.util.module_from_spec(importlib.util.spec_from_loader('validate', l)); l.exec_module(m)\n" +
    "import yaml\n" +
    "print(json.dumps(yaml.load(open(sys.argv[2]), Loader=m.Loader)))\n";
  const out = execFileSync("/usr/bin/python3", ["-c", script, path.join(CFN_DIR, "validate.py"), path.join(CFN_DIR, name)]);
  return JSON.parse(out.toString());
}

export interface Resource {
  type: string;
  dependsOn: string[];
  properties: Json;
}

const NOVALUE = Symbol("NoValue");
const PSEUDO = new Set(["AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::StackName", "AWS::StackId", "AWS::URLSuffix"]);

class Evaluator {
  constructor(
    private readonly params: Record<string, string | string[]>,
    private readonly conditions: Record<string, Json>,
    private readonly resourceName: (logicalId: string) => string,
  ) {}

  private condCache: Record<string, boolean> = {};

  cond(name: string): boolean {
    if (!(name in this.condCache)) {
      if (!(name in this.conditions)) throw new Error(`unknown condition ${name}`);
      this.condCache[name] = Boolean(this.ev(this.conditions[name]));
    }
    return this.condCache[name];
  }

  /** A reference that stays symbolic after evaluation. */
  private ref(name: string): string {
    if (PSEUDO.has(name)) return "${" + name + "}";
    return "${Ref:" + this.resourceName(name) + "}";
  }

  private str(v: Json, what: string): string {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new Error(`${what}: expected a string, got ${JSON.stringify(v)}`);
  }

  ev(node: Json): Json {
    if (Array.isArray(node)) return node.map((x) => this.ev(x)).filter((x) => x !== NOVALUE);
    if (node === null || typeof node !== "object") return typeof node === "number" || typeof node === "boolean" ? String(node) : node;
    const keys = Object.keys(node);
    if (keys.length !== 1 || !(keys[0] === "Ref" || keys[0] === "Condition" || keys[0].startsWith("Fn::"))) {
      const out: Json = {};
      for (const k of keys) {
        const v = this.ev(node[k]);
        if (v !== NOVALUE) out[k] = v;
      }
      return out;
    }
    const [k] = keys;
    const v = node[k];
    switch (k) {
      case "Ref":
        if (v === "AWS::NoValue") return NOVALUE;
        if (v in this.params) return this.params[v];
        return this.ref(v);
      case "Condition":
        return this.cond(v);
      case "Fn::If":
        return this.ev(this.cond(v[0]) ? v[1] : v[2]);
      case "Fn::Equals":
        return JSON.stringify(this.ev(v[0])) === JSON.stringify(this.ev(v[1]));
      case "Fn::Not":
        return !this.ev(v[0]);
      case "Fn::And":
        return v.every((x: Json) => this.ev(x));
      case "Fn::Or":
        return v.some((x: Json) => this.ev(x));
      case "Fn::Join": {
        const items = this.ev(v[1]);
        // a list attribute (DataEniA.SecondaryPrivateIpAddresses) stays symbolic
        if (!Array.isArray(items)) return "${Join:" + v[0] + ":" + this.str(items, "Fn::Join") + "}";
        return (items as Json[]).map((x) => this.str(x, "Fn::Join")).join(v[0]);
      }
      case "Fn::GetAtt": {
        const [res, attr] = typeof v === "string" ? v.split(/\.(.*)/) : v;
        return "${GetAtt:" + this.resourceName(res) + "." + attr + "}";
      }
      case "Fn::Select": {
        const list = this.ev(v[1]);
        if (Array.isArray(list)) return list[Number(v[0])];
        return "${Select:" + v[0] + ":" + this.str(list, "Fn::Select") + "}";
      }
      case "Fn::Sub": {
        const [text, vars] = typeof v === "string" ? [v, {}] : v;
        const evVars: Record<string, Json> = {};
        for (const [name, x] of Object.entries(vars as Record<string, Json>)) evVars[name] = this.ev(x);
        return (text as string).replace(/\$\{([^}!]+)\}/g, (_m, name: string) => {
          if (name in evVars) return this.str(evVars[name], `Fn::Sub ${name}`);
          if (name in this.params) return this.str(this.params[name], `Fn::Sub ${name}`);
          if (name.includes(".")) return this.ev({ "Fn::GetAtt": name.split(/\.(.*)/).slice(0, 2) });
          return this.ref(name);
        });
      }
      case "Fn::Base64":
        return { "Fn::Base64": this.ev(v) };
      default:
        return { [k]: this.ev(v) };
    }
  }
}

function alnum(v: string): string {
  return v.replace(/[^A-Za-z0-9]/g, "");
}

/** Fn::ForEach (AWS::LanguageExtensions) over list parameters. */
function expandForEach(section: Record<string, Json>, params: Record<string, string | string[]>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(section)) {
    if (!key.startsWith("Fn::ForEach::")) {
      out[key] = value;
      continue;
    }
    const [ident, coll, body] = value;
    const values = coll.Ref !== undefined ? params[coll.Ref] : coll;
    for (const val of values as string[]) {
      const subst = (n: Json): Json => {
        if (Array.isArray(n)) return n.map(subst);
        if (typeof n === "string") return n.split("${" + ident + "}").join(val);
        if (n && typeof n === "object") {
          if (Object.keys(n).length === 1 && n.Ref === ident) return val;
          const o: Json = {};
          for (const [k, x] of Object.entries(n)) o[k.split("&{" + ident + "}").join(alnum(val))] = subst(x);
          return o;
        }
        return n;
      };
      Object.assign(out, expandForEach(subst(body), params));
    }
  }
  return out;
}

function sortTags(node: Json): Json {
  if (Array.isArray(node)) return node.map(sortTags);
  if (node && typeof node === "object") {
    const o: Json = {};
    for (const [k, v] of Object.entries(node)) {
      o[k] = k === "Tags" && Array.isArray(v) ? [...(v as Json[])].sort((a, b) => String(a.Key).localeCompare(String(b.Key))).map(sortTags) : sortTags(v);
    }
    return o;
  }
  return node;
}

function evaluate(template: Json, params: Record<string, string | string[]>, resourceName: (id: string) => string): Record<string, Resource> {
  const conditions = expandForEach(template.Conditions ?? {}, params);
  const e = new Evaluator(params, conditions, resourceName);
  const out: Record<string, Resource> = {};
  for (const [id, r] of Object.entries(expandForEach(template.Resources, params))) {
    if (r.Condition !== undefined && !e.cond(r.Condition)) continue;
    const deps = r.DependsOn === undefined ? [] : [r.DependsOn].flat();
    out[resourceName(id)] = {
      type: r.Type,
      dependsOn: deps.map(resourceName).sort(),
      properties: sortTags(e.ev(r.Properties ?? {})),
    };
  }
  return out;
}

/** The resources a CloudFormation template creates for these parameter values (defaults applied; lists comma-separated). */
export function evaluateCfn(template: Json, values: Record<string, string>): Record<string, Resource> {
  const params: Record<string, string | string[]> = {};
  for (const [name, p] of Object.entries(template.Parameters as Record<string, Json>)) {
    const v = values[name] ?? p.Default;
    if (v === undefined) throw new Error(`parameter ${name} has no value`);
    params[name] = p.Type === "CommaDelimitedList" ? String(v).split(",") : String(v);
  }
  for (const name of Object.keys(values)) {
    if (!(name in params)) throw new Error(`unknown parameter ${name}`);
  }
  return evaluate(template, params, (id) => id);
}

/**
 * A CDK-synthesized template in the same form. Logical ids are <construct path><id><8 hex hash>:
 * `prefix` strips the path; resources outside the construct (e.g. cdk-nag, CDK metadata) are
 * left out.
 */
export function normalizeCdk(template: Json, prefix: string): Record<string, Resource> {
  const rename = (id: string) => (id.startsWith(prefix) ? id.slice(prefix.length).replace(/[0-9A-F]{8}$/, "") : id);
  const resources: Record<string, Json> = {};
  for (const [id, r] of Object.entries(template.Resources as Record<string, Json>)) {
    if (id.startsWith(prefix)) resources[id] = r;
  }
  return evaluate({ ...template, Resources: resources }, {}, rename);
}
