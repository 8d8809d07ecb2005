#!/usr/bin/env node
// Writes the ES module entry (dist/esm/index.mjs and its types) as a thin
// wrapper over the CommonJS build, so ESM and CJS users share one instance
// of the module state (one job-id counter, one binding per thread).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cjs = require(path.join(root, 'dist/cjs/index.js'));
const names = Object.keys(cjs).filter((n) => n !== '__esModule' && n !== 'default');
const esm = path.join(root, 'dist/esm');
fs.mkdirSync(esm, { recursive: true });
fs.writeFileSync(
  path.join(esm, 'index.mjs'),
  `import cjs from '../cjs/index.js';\n` +
    `export const { ${names.join(', ')} } = cjs;\n` +
    `export default cjs;\n`,
);
fs.writeFileSync(
  path.join(esm, 'index.d.mts'),
  `export * from '../cjs/index.js';\nimport * as pagewarm from '../cjs/index.js';\nexport default pagewarm;\n`,
);

// pagewarm/fastify: the same, over dist/cjs/fastify/index.js (its default
// export is the plugin).
fs.writeFileSync(
  path.join(esm, 'fastify.mjs'),
  `import cjs from '../cjs/fastify/index.js';\n` +
    `export const { pagewarmStatic } = cjs;\n` +
    `export default cjs.default;\n`,
);
fs.writeFileSync(
  path.join(esm, 'fastify.d.mts'),
  `export * from '../cjs/fastify/index.js';\nexport { default } from '../cjs/fastify/index.js';\n`,
);
