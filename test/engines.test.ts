// The Node versions pagewarm is tested on, in one place (.ci/node-versions,
// besides the CI machines' own Node 20), agree with what the package and
// its dependency tree declare: every package npm installs for development
// accepts every tested version (no EBADENGINE warning), pagewarm's own
// `engines` accepts them, and the README's platforms table names them.
import t from 'tap';
import * as fs from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';

const root = join(__dirname, '..');
const listed = fs
  .readFileSync(join(root, '.ci', 'node-versions'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const tested = [process.versions.node, ...listed];

t.test('.ci/node-versions pins exact versions, of 22 and 24', async (t) => {
  for (const v of listed) t.ok(semver.valid(v), `${v} is an exact version`);
  t.same(listed.map((v) => semver.major(v)).sort(), [22, 24]);
});

t.test("every package in the lockfile accepts every tested Node version", async (t) => {
  const lock = JSON.parse(fs.readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
  };
  const refused: string[] = [];
  let checked = 0;
  for (const [path, pkg] of Object.entries(lock.packages)) {
    const range = Array.isArray(pkg.engines) ? undefined : pkg.engines?.node;
    if (!range) continue;
    checked++;
    for (const v of tested) {
      if (!semver.satisfies(v, range)) refused.push(`${path || 'pagewarm'}@${pkg.version}: engines.node "${range}" refuses ${v}`);
    }
  }
  t.ok(checked > 50, `${checked} packages declare engines.node`);
  t.same(refused, [], 'none refuses a tested version');
});

t.test("pagewarm's engines accept the tested versions, and the oldest supported is Node 20", async (t) => {
  const pkg = JSON.parse(fs.readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
  for (const v of tested) t.ok(semver.satisfies(v, pkg.engines.node), `${v} satisfies ${pkg.engines.node}`);
  t.equal(semver.minVersion(pkg.engines.node)?.major, 20);
});

t.test("the README's platforms table names every tested version", async (t) => {
  const readme = fs.readFileSync(join(root, 'README.md'), 'utf8');
  for (const v of listed) t.match(readme, `| ${v} |`, `README names Node ${v}`);
  t.match(readme, /\| 20(\.\d+\.\d+)? \|/, 'and Node 20');
});
