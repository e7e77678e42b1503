// Builds the publishable package into dist/: one ESM bundle (esbuild) and
// the .d.ts files (tsc), whose relative imports get the .js / /index.js
// extensions Node's ESM resolution (moduleResolution node16/nodenext) needs.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });

await build({
  entryPoints: [join(root, 'src/index.ts')],
  outfile: join(dist, 'index.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
});

execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.d.ts')) fixImports(p);
  }
}

function fixImports(file) {
  const src = readFileSync(file, 'utf8');
  const out = src.replace(/(from\s+|import\(\s*)(['"])(\.{1,2}\/[^'"]*)\2/g, (m, lead, q, spec) => {
    if (/\.(js|mjs|cjs|json)$/.test(spec)) return m;
    const base = resolve(dirname(file), spec);
    if (existsSync(base + '.d.ts')) return `${lead}${q}${spec}.js${q}`;
    if (existsSync(join(base, 'index.d.ts'))) return `${lead}${q}${spec}/index.js${q}`;
    throw new Error(`${file}: cannot resolve ${spec}`);
  });
  if (out !== src) writeFileSync(file, out);
}
walk(dist);
console.log('built dist/index.js and dist/**/*.d.ts');
