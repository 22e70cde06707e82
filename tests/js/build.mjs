// Builds tests/js/app.js into a component with componentize-js, from wit/ as it is:
//   node build.mjs OUT.wasm       the component (a wasi:cli/run command, world `plugin`)
//   node build.mjs --types DIR    the TypeScript declarations of the world, as jco generates them
// `disableFeatures` keeps componentize-js from importing wasi:http, which stagelock run does not
// serve.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wit = join(here, '../../wit');
const [what, out] = process.argv.slice(2);

if (what === '--types' && out) {
  // jco's bundled WASI shim starts with no directory: lend it the filesystem to read wit/ from.
  const shim = join(here, 'node_modules/@bytecodealliance/jco-transpile/node_modules',
    '@bytecodealliance/preview2-shim/dist/nodejs/filesystem.js');
  (await import(shim))._addPreopen('/', '/');
  const { typesComponent } = await import(
    join(here, 'node_modules/@bytecodealliance/jco/dist/cmd/types.js'));
  const files = await typesComponent(wit, { worldName: 'plugin', guest: true });
  for (const [name, bytes] of Object.entries(files)) {
    await mkdir(dirname(join(out, name)), { recursive: true });
    await writeFile(join(out, name), bytes);
  }
} else if (what && !out) {
  const { componentize } = await import('@bytecodealliance/componentize-js');
  const source = await readFile(join(here, 'app.js'), 'utf8');
  const { component } = await componentize(source, {
    witPath: wit,
    worldName: 'plugin',
    disableFeatures: ['http', 'fetch-event'],
  });
  await writeFile(what, component);
} else {
  console.error('usage: node build.mjs OUT.wasm | node build.mjs --types DIR');
  process.exit(2);
}
