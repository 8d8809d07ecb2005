#!/usr/bin/env node
// Runs when `node-gyp-build` could neither load a prebuild nor build the addon
// during `npm install` (see the "install" script). pagewarm still works: it
// falls back to its portable TypeScript implementation at run time. So this
// explains what happened and exits 0, never failing the user's install.
'use strict';

const lines = [
  'pagewarm: the native addon is not available on this machine',
  `  (no prebuild for ${process.platform}-${process.arch} that loads here, and building from source failed).`,
  '  pagewarm will use its portable fallback: the same API, but warming and sending copy',
  '  through JavaScript buffers, residency is reported as unknown, and eviction has no effect.',
  '  capabilities().fallbackReason says why at run time.',
  '  To build the addon: install a C++ toolchain, make and python3',
  '  (Debian/Ubuntu: apt-get install -y g++ make python3), then run: npm rebuild pagewarm',
];
console.warn(lines.join('\n'));
process.exit(0);
