#!/usr/bin/env node
// Copy the files tsc does not emit (the web dashboard) from src/ to dist/,
// keeping their paths: src/http/dashboard/* -> dist/http/dashboard/*.
// Run after `tsc -p tsconfig.build.json` (see the build script).
import { cpSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ASSETS = ['http/dashboard'];

for (const dir of ASSETS) {
  const from = `${root}src/${dir}`;
  if (!existsSync(from)) {
    console.error(`copy-assets: missing ${from}`);
    process.exit(1);
  }
  cpSync(from, `${root}dist/${dir}`, { recursive: true });
}
