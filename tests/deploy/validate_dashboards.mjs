#!/usr/bin/env node
// Type-checks every Grafana dashboard JSON against the Dashboard schema of
// @grafana/schema (Grafana's own CUE-generated TypeScript types), offline.
//
//   node tests/deploy/validate_dashboards.mjs [DASHBOARD_DIR]   (default: <repo>/grafana/dashboards)
//
// @grafana/schema ships types, not a runtime validator, so each dashboard is
// compiled as an object literal assigned to `Dashboard` with the TypeScript
// compiler: wrong types, unknown top-level or panel fields (excess property
// checks) and missing required fields are compile errors. Prints one line per
// dashboard and "N passed, M failed"; exits 1 on any failure.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const DIR = path.resolve(process.argv[2] || path.join(ROOT, "grafana", "dashboards"));

const files = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .sort();
if (files.length === 0) {
  console.error(`no dashboards in ${DIR}`);
  process.exit(2);
}

const options = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: [],
};

// JSON cannot name a TypeScript string enum member ("thresholds" is not
// FieldColorModeId.Thresholds to the compiler), so the schema is checked with
// every string enum widened to the union of its values; everything else
// (fields, nesting, required keys, numbers vs strings) stays as Grafana
// declares it.
const LOOSE = `
type Loose<T> = T extends string
  ? \`\${T}\`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<Loose<U>>
      : T extends object
        ? { [K in keyof T]: Loose<T[K]> }
        : T;
`;

// Virtual sources next to this file, so "@grafana/schema" resolves from
// tests/deploy/node_modules; nothing is written to disk.
const virtual = new Map();
files.forEach((f, i) => {
  const text = fs.readFileSync(path.join(DIR, f), "utf8");
  JSON.parse(text); // a syntax error fails loudly here, with the file name
  const src =
    `import type { Dashboard } from "@grafana/schema";\n` +
    `export const dashboard${i}: Loose<Dashboard> = ${text.trim()};\n` +
    LOOSE;
  virtual.set(path.join(HERE, `__dashboard_${i}.mts`), { file: f, src });
});

const host = ts.createCompilerHost(options);
const orig = { getSourceFile: host.getSourceFile, fileExists: host.fileExists, readFile: host.readFile };
host.getSourceFile = (name, lang, onError, create) => {
  const v = virtual.get(path.resolve(name));
  if (v) return ts.createSourceFile(name, v.src, lang, true);
  return orig.getSourceFile.call(host, name, lang, onError, create);
};
host.fileExists = (name) => virtual.has(path.resolve(name)) || orig.fileExists.call(host, name);
host.readFile = (name) => {
  const v = virtual.get(path.resolve(name));
  return v ? v.src : orig.readFile.call(host, name);
};

const program = ts.createProgram([...virtual.keys()], options, host);
const diags = ts.getPreEmitDiagnostics(program);
const byFile = new Map();
const global = [];
for (const d of diags) {
  const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n");
  const v = d.file && virtual.get(path.resolve(d.file.fileName));
  if (!v) {
    global.push(msg);
    continue;
  }
  const { line } = d.file.getLineAndCharacterOfPosition(d.start || 0);
  // line 0 is the import; line N of the wrapper is line N of the JSON
  const at = `${v.file}:${line}`;
  if (!byFile.has(v.file)) byFile.set(v.file, []);
  byFile.get(v.file).push(`${at}: ${msg}`);
}

let passed = 0;
let failed = 0;
for (const { file } of virtual.values()) {
  const errs = byFile.get(file);
  if (errs) {
    failed++;
    console.log(`FAIL ${file}`);
    for (const e of errs) console.log(`     ${e}`);
  } else {
    passed++;
    console.log(`ok   ${file}`);
  }
}
if (global.length) {
  failed++;
  console.log("FAIL TypeScript setup");
  for (const e of global) console.log(`     ${e}`);
}
console.log(`validate_dashboards: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
