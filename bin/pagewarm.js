#!/usr/bin/env node
// The `pagewarm` command: see `pagewarm --help` (source: lib/cli/main.ts).
'use strict';
require('../dist/cjs/cli/main.js').run();
