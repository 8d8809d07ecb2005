// Loads TypeScript sources for the benchmarks and the broker example without
// a build step: ts-node in transpile-only mode (type-checking is done by
// `npm run typecheck`). Child processes started by the benchmarks are given
// `-r <this file>` so they load the same way.
'use strict';
let tsNode;
try {
  tsNode = require('ts-node');
} catch {
  // tap 21 ships ts-node under this name.
  tsNode = require('@isaacs/ts-node-temp-fork-for-pr-2009');
}
tsNode.register({ transpileOnly: true, project: require('path').join(__dirname, '..', 'tsconfig.json') });
