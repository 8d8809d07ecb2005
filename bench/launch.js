// Starts a TypeScript module of the benchmarks or the broker example in a
// child process: `node bench/launch.js FILE.ts [args...]`. It registers
// ts-node (see register.js), makes process.argv look as if FILE.ts had been
// run directly, loads it with require() and calls its exported main(), if
// any. Going through require() keeps .ts files out of any ESM loader hooks
// the parent runs under (tap's, in the smoke test).
'use strict';
const { resolve } = require('path');
require('./register.js');
const file = resolve(process.argv[2]);
process.argv = [process.argv[0], file, ...process.argv.slice(3)];
const mod = require(file);
if (typeof mod.main === 'function') {
  Promise.resolve(mod.main()).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
