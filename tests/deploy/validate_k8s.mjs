#!/usr/bin/env node
// Offline validation of every manifest under k8s/ (no cluster needed).
//
//   node tests/deploy/validate_k8s.mjs [K8S_DIR]     (default: <repo>/k8s)
//
// For every YAML document:
//   1. schema: the object is built with its kubernetes-models class (the
//      Kubernetes OpenAPI schemas; CRDs through the models of their operator,
//      mapped explicitly in CRD_MODELS) and .validate() is called. A kind that
//      is neither a built-in Kubernetes kind nor an explicitly handled CRD fails.
//   2. strict fields: the schema validators accept unknown fields (as the API
//      server does unless field validation is Strict), so a misspelt key such
//      as `readinesProbe` would pass. We run the same validator over a traced
//      view of the object and report every field it never looked at, the way
//      `kubectl apply --validate=strict` would.
//   3. references: what the schemas cannot see: selectors that match their pod
//      templates, Services and ServiceMonitors that select pods/Services and
//      name ports that exist, ConfigMaps/Secrets (and their keys) that are
//      defined, StatefulSets' governing headless Services, HPA/PDB targets, and
//      the Pod Security "restricted" rules for every pod template.
//   4. kustomization.yaml lists every manifest file exactly once, and only
//      files that exist.
//
// Prints one line per object and a closing "N passed, M failed" line; exits 1
// on any failure.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const K8S = path.resolve(process.argv[2] || path.join(ROOT, "k8s"));
const NAMESPACE = "fastnext";

// Custom resources we deploy, and the npm models that carry their CRD schemas.
const CRD_MODELS = {
  "monitoring.coreos.com/v1": {
    pkg: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
    kinds: ["ServiceMonitor", "PodMonitor", "PrometheusRule"],
  },
};
// Documents that are not API objects and get a check of their own.
const KUSTOMIZATION = "kustomize.config.k8s.io/v1beta1/Kustomization";

const CLUSTER_SCOPED = new Set([
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "PersistentVolume",
  "StorageClass",
  "CustomResourceDefinition",
  "PriorityClass",
]);
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

// ---------------------------------------------------------------- models

async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string")
    throw new Error("apiVersion and kind must be strings");
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) throw new Error(`bad kind ${JSON.stringify(kind)}`);
  const crd = CRD_MODELS[apiVersion];
  if (crd) {
    if (!crd.kinds.includes(kind))
      throw new Error(`unknown kind ${apiVersion}/${kind}: not an explicitly handled CRD kind`);
    return (await import(`${crd.pkg}/${kind}`))[kind];
  }
  // Built-in kinds: "v1" is the core group, "apps/v1" is group apps.
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion))
    throw new Error(`bad apiVersion ${JSON.stringify(apiVersion)}`);
  const spec = `kubernetes-models/${apiVersion}/${kind}`;
  let mod;
  try {
    mod = await import(spec);
  } catch (e) {
    throw new Error(
      `unknown kind ${apiVersion}/${kind}: not a Kubernetes kind in kubernetes-models ` +
        `and not an explicitly handled CRD (${e.code || e.message})`,
    );
  }
  if (!mod[kind]) throw new Error(`unknown kind ${apiVersion}/${kind}`);
  return mod[kind];
}

// ---------------------------------------------------------------- strict fields

const isPlain = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// A view of `data` whose reads are recorded per JSON pointer: which keys the
// validator read (get/has), and whether it enumerated the object (maps).
function traced(data, ptr, rec) {
  if (data === null || typeof data !== "object") return data;
  const children = new Map();
  const note = (key) => {
    let s = rec.read.get(ptr);
    if (!s) rec.read.set(ptr, (s = new Set()));
    s.add(key);
  };
  return new Proxy(data, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== "string") return v;
      note(key);
      if (v !== null && typeof v === "object" && Object.prototype.hasOwnProperty.call(target, key)) {
        if (!children.has(key)) children.set(key, traced(v, `${ptr}/${key}`, rec));
        return children.get(key);
      }
      return v;
    },
    has(target, key) {
      if (typeof key === "string") note(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      rec.enumerated.add(ptr);
      return Reflect.ownKeys(target);
    },
  });
}

// Fields of `data` the validator never read. A plain object the validator did
// not look into at all is free-form in the schema (e.g. preserve-unknown-
// fields): its subtree is not judged.
function unknownFields(data, ptr, rec, out) {
  if (Array.isArray(data)) {
    data.forEach((v, i) => unknownFields(v, `${ptr}/${i}`, rec, out));
    return;
  }
  if (!isPlain(data)) return;
  const read = rec.read.get(ptr);
  if (rec.enumerated.has(ptr)) {
    // a map (labels, data, resources.limits): every key is a value's name
    for (const k of Object.keys(data)) unknownFields(data[k], `${ptr}/${k}`, rec, out);
    return;
  }
  if (!read || read.size === 0) return; // free-form
  for (const k of Object.keys(data)) {
    if (!read.has(k)) out.push(`${ptr}/${k}`);
    else unknownFields(data[k], `${ptr}/${k}`, rec, out);
  }
}

function strictCheck(Model, obj) {
  const rec = { read: new Map(), enumerated: new Set() };
  const view = traced(JSON.parse(JSON.stringify(obj)), "", rec);
  try {
    Model.prototype.validate.call(view);
  } catch {
    // schema errors are reported by the plain .validate() call
  }
  const out = [];
  unknownFields(obj, "", rec, out);
  return out;
}

// ---------------------------------------------------------------- helpers

function walkFiles(dir) {
  const out = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...walkFiles(p));
    else if (/\.ya?ml$/.test(ent.name)) out.push(p);
  }
  return out.sort();
}

const labelsMatch = (selector, labels) =>
  !!selector &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => (labels || {})[k] === v);

function matchLabelsOf(sel) {
  if (!sel) return null;
  if (sel.matchExpressions && sel.matchExpressions.length)
    throw new Error("matchExpressions are not supported by this checker");
  return sel.matchLabels || {};
}

function podTemplate(obj) {
  if (obj.kind === "Pod") return { metadata: obj.metadata, spec: obj.spec };
  if (WORKLOAD_KINDS.has(obj.kind)) return obj.spec && obj.spec.template;
  if (obj.kind === "CronJob") return obj.spec.jobTemplate.spec.template;
  return null;
}

const allContainers = (spec) => [...(spec.initContainers || []), ...(spec.containers || [])];

// ---------------------------------------------------------------- checks

// Pod Security Standards, "restricted" profile (the namespace enforces it).
function restricted(where, spec, errs) {
  const psc = spec.securityContext || {};
  for (const f of ["hostNetwork", "hostPID", "hostIPC"])
    if (spec[f]) errs.push(`${where}: ${f} is not allowed (restricted)`);
  for (const v of spec.volumes || [])
    if (v.hostPath) errs.push(`${where}: hostPath volume ${v.name} (restricted)`);
  for (const c of allContainers(spec)) {
    const sc = c.securityContext || {};
    const w = `${where} container ${c.name}`;
    if (!(sc.runAsNonRoot ?? psc.runAsNonRoot))
      errs.push(`${w}: runAsNonRoot must be true (restricted)`);
    if ((sc.runAsUser ?? psc.runAsUser) === 0) errs.push(`${w}: runAsUser 0 (restricted)`);
    if (sc.allowPrivilegeEscalation !== false)
      errs.push(`${w}: allowPrivilegeEscalation must be false (restricted)`);
    if (sc.privileged) errs.push(`${w}: privileged (restricted)`);
    const drop = (sc.capabilities && sc.capabilities.drop) || [];
    if (!drop.includes("ALL")) errs.push(`${w}: capabilities.drop must include ALL (restricted)`);
    const add = (sc.capabilities && sc.capabilities.add) || [];
    if (add.some((a) => a !== "NET_BIND_SERVICE"))
      errs.push(`${w}: capabilities.add ${add} (restricted)`);
    const sp = (sc.seccompProfile || psc.seccompProfile || {}).type;
    if (sp !== "RuntimeDefault" && sp !== "Localhost")
      errs.push(`${w}: seccompProfile RuntimeDefault or Localhost required (restricted)`);
    if (c.ports) for (const p of c.ports) if (p.hostPort) errs.push(`${w}: hostPort (restricted)`);
    // our own rules
    if (sc.readOnlyRootFilesystem !== true) errs.push(`${w}: readOnlyRootFilesystem must be true`);
    const r = c.resources || {};
    if (!r.requests || !r.requests.cpu || !r.requests.memory)
      errs.push(`${w}: resources.requests.cpu and .memory are required`);
    if (!r.limits || !r.limits.memory) errs.push(`${w}: resources.limits.memory is required`);
    if (/:latest$|^[^:@]+$/.test(c.image || "") && !/^(registry\.example\.com\/app|fastnext-proxy)(:|$)/.test(c.image))
      errs.push(`${w}: image ${c.image} must be pinned to a tag`);
  }
}

function containerPortNames(c) {
  return new Set((c.ports || []).map((p) => p.name).filter(Boolean));
}

function checkPodRefs(where, spec, objs, errs) {
  const find = (kind, name) =>
    objs.find((o) => o.kind === kind && o.metadata && o.metadata.name === name);
  const keysOf = (o) => new Set([...Object.keys(o.data || {}), ...Object.keys(o.stringData || {})]);
  const needKey = (kind, name, key, what) => {
    const o = find(kind, name);
    if (!o) errs.push(`${where}: ${what} refers to ${kind} ${name}, which no manifest defines`);
    else if (key !== undefined && !keysOf(o).has(key))
      errs.push(`${where}: ${what} refers to key ${key} of ${kind} ${name}, which it lacks`);
  };
  const volNames = new Set((spec.volumes || []).map((v) => v.name));
  const claimNames = new Set(spec.__claims || []);
  for (const v of spec.volumes || []) {
    if (v.configMap) {
      needKey("ConfigMap", v.configMap.name, undefined, `volume ${v.name}`);
      for (const it of v.configMap.items || [])
        needKey("ConfigMap", v.configMap.name, it.key, `volume ${v.name}`);
    }
    if (v.secret) {
      needKey("Secret", v.secret.secretName, undefined, `volume ${v.name}`);
      for (const it of v.secret.items || [])
        needKey("Secret", v.secret.secretName, it.key, `volume ${v.name}`);
    }
  }
  for (const c of allContainers(spec)) {
    const w = `${where} container ${c.name}`;
    for (const ef of c.envFrom || []) {
      if (ef.configMapRef) needKey("ConfigMap", ef.configMapRef.name, undefined, `${w} envFrom`);
      if (ef.secretRef) needKey("Secret", ef.secretRef.name, undefined, `${w} envFrom`);
    }
    for (const e of c.env || []) {
      const vf = e.valueFrom || {};
      if (vf.secretKeyRef) needKey("Secret", vf.secretKeyRef.name, vf.secretKeyRef.key, `${w} env ${e.name}`);
      if (vf.configMapKeyRef)
        needKey("ConfigMap", vf.configMapKeyRef.name, vf.configMapKeyRef.key, `${w} env ${e.name}`);
    }
    for (const m of c.volumeMounts || [])
      if (!volNames.has(m.name) && !claimNames.has(m.name))
        errs.push(`${w}: volumeMount ${m.name} has no volume or volumeClaimTemplate`);
    const ports = containerPortNames(c);
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const p = c[probe];
      if (!p) continue;
      const port = (p.httpGet || p.tcpSocket || p.grpc || {}).port;
      if (typeof port === "string" && !ports.has(port))
        errs.push(`${w}: ${probe} uses port name ${port}, which the container does not declare`);
    }
  }
}

function checkObject(obj, objs, errs) {
  const md = obj.metadata || {};
  const id = `${obj.kind}/${md.name}`;
  if (!md.name) errs.push(`${id}: metadata.name is required`);
  if (obj.kind !== "Kustomization") {
    if (CLUSTER_SCOPED.has(obj.kind)) {
      if (md.namespace) errs.push(`${id}: cluster-scoped kind must not set a namespace`);
    } else if (md.namespace !== NAMESPACE) {
      errs.push(`${id}: metadata.namespace must be ${NAMESPACE}`);
    }
  }

  const tpl = podTemplate(obj);
  if (tpl) {
    const spec = tpl.spec || {};
    if (obj.kind !== "Job" && obj.kind !== "Pod") {
      const sel = matchLabelsOf(obj.spec.selector);
      if (!labelsMatch(sel, tpl.metadata && tpl.metadata.labels))
        errs.push(`${id}: spec.selector does not match the pod template's labels`);
    }
    if (obj.kind === "StatefulSet") {
      spec.__claims = (obj.spec.volumeClaimTemplates || []).map((c) => c.metadata.name);
      const svc = objs.find((o) => o.kind === "Service" && o.metadata.name === obj.spec.serviceName);
      if (!svc) errs.push(`${id}: serviceName ${obj.spec.serviceName} is not a Service here`);
      else if (svc.spec.clusterIP !== "None")
        errs.push(`${id}: serviceName ${obj.spec.serviceName} must be a headless Service`);
      else if (!labelsMatch(svc.spec.selector, tpl.metadata.labels))
        errs.push(`${id}: its governing Service ${svc.metadata.name} does not select its pods`);
    }
    restricted(id, spec, errs);
    checkPodRefs(id, spec, objs, errs);
    delete spec.__claims;
  }

  if (obj.kind === "Service") {
    const pods = objs.map(podTemplate).filter((t) => t && labelsMatch(obj.spec.selector, t.metadata.labels));
    if (!obj.spec.selector) errs.push(`${id}: a Service without a selector`);
    else if (pods.length === 0) errs.push(`${id}: its selector matches no pod template`);
    for (const p of obj.spec.ports || []) {
      const tp = p.targetPort ?? p.port;
      for (const t of pods) {
        const cs = t.spec.containers || [];
        const ok =
          typeof tp === "string"
            ? cs.some((c) => containerPortNames(c).has(tp))
            : cs.some((c) => (c.ports || []).some((cp) => cp.containerPort === tp));
        if (!ok) errs.push(`${id}: targetPort ${tp} is not a port of the pods it selects`);
      }
    }
  }

  if (obj.kind === "HorizontalPodAutoscaler") {
    const r = obj.spec.scaleTargetRef;
    const t = objs.find((o) => o.kind === r.kind && o.metadata.name === r.name && o.apiVersion === r.apiVersion);
    if (!t) errs.push(`${id}: scaleTargetRef ${r.apiVersion} ${r.kind}/${r.name} is not defined here`);
    else {
      for (const c of podTemplate(t).spec.containers)
        if (!c.resources || !c.resources.requests)
          errs.push(`${id}: utilization targets need requests on every container (${c.name} has none)`);
    }
    if (obj.spec.minReplicas > obj.spec.maxReplicas) errs.push(`${id}: minReplicas > maxReplicas`);
  }

  if (obj.kind === "PodDisruptionBudget") {
    const sel = matchLabelsOf(obj.spec.selector);
    if (!objs.some((o) => podTemplate(o) && labelsMatch(sel, podTemplate(o).metadata.labels)))
      errs.push(`${id}: its selector matches no pod template`);
  }

  if (obj.kind === "NetworkPolicy") {
    const sel = matchLabelsOf(obj.spec.podSelector);
    if (!objs.some((o) => podTemplate(o) && labelsMatch(sel, podTemplate(o).metadata.labels)))
      errs.push(`${id}: its podSelector matches no pod template`);
  }

  if (obj.kind === "ServiceMonitor") {
    const sel = matchLabelsOf(obj.spec.selector);
    const ns = (obj.spec.namespaceSelector && obj.spec.namespaceSelector.matchNames) || [md.namespace];
    const svcs = objs.filter(
      (o) => o.kind === "Service" && ns.includes(o.metadata.namespace) && labelsMatch(sel, o.metadata.labels),
    );
    if (svcs.length === 0) errs.push(`${id}: its selector matches no Service`);
    for (const ep of obj.spec.endpoints || [])
      for (const s of svcs)
        if (!(s.spec.ports || []).some((p) => p.name === ep.port))
          errs.push(`${id}: endpoint port ${ep.port} is not a named port of Service ${s.metadata.name}`);
  }
}

function checkKustomization(file, k, errs) {
  const dir = path.dirname(file);
  const listed = k.resources || [];
  const seen = new Set();
  for (const r of listed) {
    if (seen.has(r)) errs.push(`kustomization: ${r} is listed twice`);
    seen.add(r);
    if (!fs.existsSync(path.join(dir, r))) errs.push(`kustomization: ${r} does not exist`);
  }
  for (const f of walkFiles(dir)) {
    const rel = path.relative(dir, f);
    if (path.basename(f).startsWith("kustomization.")) continue;
    if (!seen.has(rel)) errs.push(`kustomization: ${rel} is not listed in resources`);
  }
  const allowed = new Set(["apiVersion", "kind", "namespace", "labels", "resources", "images", "commonAnnotations"]);
  for (const key of Object.keys(k))
    if (!allowed.has(key)) errs.push(`kustomization: unexpected field ${key}`);
  if (k.namespace !== NAMESPACE) errs.push(`kustomization: namespace must be ${NAMESPACE}`);
}

// ---------------------------------------------------------------- main

async function main() {
  const files = walkFiles(K8S);
  if (files.length === 0) {
    console.error(`no manifests under ${K8S}`);
    process.exit(2);
  }
  const objs = []; // { obj, file }
  let passed = 0;
  let failed = 0;
  const fail = (what, msgs) => {
    failed++;
    console.log(`FAIL ${what}`);
    for (const m of msgs) console.log(`     ${m}`);
  };

  for (const file of files) {
    const rel = path.relative(ROOT, file);
    const text = fs.readFileSync(file, "utf8");
    const docs = YAML.parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
    docs.forEach((doc, i) => {
      const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
      if (problems.length) return fail(`${rel} document ${i + 1}: YAML`, problems);
      const obj = doc.toJS();
      if (obj === null || obj === undefined) return;
      if (!isPlain(obj)) return fail(`${rel} document ${i + 1}`, ["not a mapping"]);
      objs.push({ obj, file, rel });
    });
  }

  const all = objs.map((o) => o.obj);
  const names = new Set();
  for (const { obj, file, rel } of objs) {
    const id = obj.metadata ? `${obj.kind}/${obj.metadata.name}` : obj.kind;
    const errs = [];
    const key = `${obj.apiVersion}/${obj.kind}`;
    const uniq = `${obj.kind}/${obj.metadata && obj.metadata.namespace}/${obj.metadata && obj.metadata.name}`;
    if (names.has(uniq)) errs.push(`${id} is defined twice`);
    names.add(uniq);
    if (key === KUSTOMIZATION) {
      checkKustomization(file, obj, errs);
    } else {
      let Model = null;
      try {
        Model = await modelFor(obj.apiVersion, obj.kind);
      } catch (e) {
        errs.push(e.message);
      }
      if (Model) {
        try {
          new Model(obj).validate();
        } catch (e) {
          errs.push(`schema: ${e.message}`);
        }
        for (const f of strictCheck(Model, obj)) errs.push(`unknown field ${f}`);
      }
      try {
        checkObject(obj, all, errs);
      } catch (e) {
        errs.push(`check: ${e.message}`);
      }
    }
    if (errs.length) fail(`${rel} ${obj.apiVersion} ${id}`, errs);
    else {
      passed++;
      console.log(`ok   ${rel} ${obj.apiVersion} ${id}`);
    }
  }
  if (!objs.some((o) => `${o.obj.apiVersion}/${o.obj.kind}` === KUSTOMIZATION))
    fail("k8s/kustomization.yaml", ["missing"]);
  console.log(`validate_k8s: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
