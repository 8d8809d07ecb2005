#!/usr/bin/env node
// The `pagewarm` command: see `pagewarm --help` (source: lib/cli.ts).
'use strict';
require('../dist/cjs/cli.js').run();
