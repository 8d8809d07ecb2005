// lib/http/conditional.ts alone: request targets, HTTP-dates, entity-tag
// lists, preconditions and ranges, each rule against RFC 9110 / 9112.
import t from 'tap';
import {
  evaluatePreconditions,
  ifRangeMatches,
  listField,
  parseEntityTag,
  parseEntityTagList,
  parseHttpDate,
  parseRange,
  requestPath,
  selectRange,
  singleField,
  strongMatch,
  weakMatch,
  type Validators,
} from '../lib/http/conditional';

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37) / 1000;
const NOW = Date.UTC(2026, 11, 3, 12, 0, 0); // a fixed "now" for two-digit years

t.test('HTTP-date: the three forms of RFC 9110 5.6.7, all GMT', async (t) => {
  t.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW), NOV_6_1994, 'IMF-fixdate');
  t.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), NOV_6_1994, 'RFC 850');
  t.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), NOV_6_1994, 'asctime, one-digit day');
  t.equal(parseHttpDate('Sun Nov 06 08:49:37 1994', NOW), NOV_6_1994, 'asctime, two-digit day');
  t.equal(parseHttpDate('Thu, 01 Jan 1970 00:00:00 GMT', NOW), 0);
  t.equal(parseHttpDate('Sat, 31 Dec 2022 23:59:60 GMT', NOW), Date.UTC(2023, 0, 1) / 1000, 'a leap second: the next second');
  t.equal(parseHttpDate('Tue, 29 Feb 2000 00:00:00 GMT', NOW), Date.UTC(2000, 1, 29) / 1000, 'a leap day');
});

t.test('HTTP-date: RFC 850 two-digit years (more than 50 years ahead is the past century)', async (t) => {
  const year = (yy: string, now = NOW): number | undefined => {
    const s = parseHttpDate(`Monday, 01-Jan-${yy} 00:00:00 GMT`, now);
    return s === undefined ? undefined : new Date(s * 1000).getUTCFullYear();
  };
  t.equal(year('26'), 2026);
  t.equal(year('76'), 2076, 'just under 50 years ahead: this century');
  t.equal(year('77'), 1977, 'more than 50 years ahead: the past century');
  t.equal(year('99'), 1999);
  t.equal(year('00'), 2000);
  t.equal(year('01', Date.UTC(2099, 5, 1)), 2101, 'near the end of a century: the next one');
  t.equal(year('49', Date.UTC(2099, 5, 1)), 2149);
  t.equal(year('50', Date.UTC(2099, 5, 1)), 2050, 'from 2099, 2150 is more than 50 years ahead');
});

t.test('HTTP-date: anything else is invalid', async (t) => {
  for (const bad of [
    '2099',
    '2030-01-01',
    '2030-01-01T00:00:00Z',
    'Sun, 06 Nov 1994 08:49:37', // no GMT
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 08:49:37 +0000',
    'Sun, 6 Nov 1994 08:49:37 GMT', // one-digit day in IMF-fixdate
    'sun, 06 nov 1994 08:49:37 gmt', // case-sensitive
    'Sun,  06 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 94 08:49:37 GMT',
    'Sunday, 06-Nov-1994 08:49:37 GMT',
    'Sun Nov  6 08:49:37 1994 GMT',
    'Sun Nov 6 08:49:37 1994',
    'Sun, 31 Feb 2021 00:00:00 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Nov 1994 08:60:00 GMT',
    'Sun, 00 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT', // a list
    'yesterday',
    '',
    '0',
  ]) {
    t.equal(parseHttpDate(bad, NOW), undefined, JSON.stringify(bad));
  }
});

t.test('single and list fields', async (t) => {
  t.equal(singleField(undefined), undefined);
  t.equal(singleField('a'), 'a');
  t.equal(singleField(['a']), 'a');
  t.equal(singleField(['a', 'b']), undefined, 'received twice: no single value');
  t.equal(listField(['"a"', '"b"']), '"a", "b"');
  t.equal(listField('"a"'), '"a"');
  t.equal(listField([]), undefined);
});

t.test('entity tags: parsing and comparison (8.8.3)', async (t) => {
  t.same(parseEntityTag('W/"x"'), { weak: true, opaque: '"x"' });
  t.same(parseEntityTag('"x"'), { weak: false, opaque: '"x"' });
  t.equal(parseEntityTag('x'), undefined, 'unquoted');
  t.equal(parseEntityTag('w/"x"'), undefined, 'W/ is case-sensitive');
  t.equal(parseEntityTag('"x" "y"'), undefined);
  t.equal(parseEntityTagList('*'), '*');
  t.same(parseEntityTagList('"a,b", W/"c" ,, "d"'), [
    { weak: false, opaque: '"a,b"' },
    { weak: true, opaque: '"c"' },
    { weak: false, opaque: '"d"' },
  ], 'a comma inside quotes belongs to the tag; empty elements skipped');
  const many = Array.from({ length: 3000 }, (_, i) => `"t${i}"`).join(', ');
  t.equal((parseEntityTagList(`${many}, W/"last"`) as unknown[]).length, 3001, 'a long list (as a 16 KiB header can hold), every tag');
  t.equal(evaluatePreconditions({ method: 'GET', ifNoneMatch: `${many}, W/"last"` }, { etag: 'W/"last"' }), 304, 'the last of them matches');
  t.equal(parseEntityTagList('"a" junk'), undefined);
  t.equal(parseEntityTagList('"a", *'), undefined, '* is not a list member');
  t.equal(parseEntityTagList(''), undefined);
  // The RFC's own table (8.8.3.2).
  const rows: Array<[string, string, boolean, boolean]> = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
  ];
  for (const [a, b, strong, weak] of rows) {
    t.equal(strongMatch(parseEntityTag(a)!, parseEntityTag(b)!), strong, `${a} ${b} strong`);
    t.equal(weakMatch(parseEntityTag(a)!, parseEntityTag(b)!), weak, `${a} ${b} weak`);
  }
});

t.test('preconditions in the order of 13.2.2', async (t) => {
  const weakTag = 'W/"5-abc"';
  const v: Validators = { etag: weakTag, lastModified: NOV_6_1994 };
  const lm = 'Sun, 06 Nov 1994 08:49:37 GMT';
  const before = 'Sun, 06 Nov 1994 08:49:36 GMT';
  const after = 'Sun, 06 Nov 1994 08:49:38 GMT';
  const cases: Array<[string, Parameters<typeof evaluatePreconditions>[0], 'proceed' | 304 | 412, Validators?]> = [
    ['no conditions', { method: 'GET' }, 'proceed'],
    ['If-Match: the weak ETag (strong comparison)', { method: 'GET', ifMatch: weakTag }, 412],
    ['If-Match: its strong twin', { method: 'GET', ifMatch: '"5-abc"' }, 412],
    ['If-Match: a strong ETag matches', { method: 'GET', ifMatch: '"x", "5-abc"' }, 'proceed', { etag: '"5-abc"' }],
    ['If-Match: *', { method: 'GET', ifMatch: '*' }, 'proceed'],
    ['If-Match: * without an ETag', { method: 'GET', ifMatch: '*' }, 'proceed', {}],
    ['If-Match: a list without an ETag', { method: 'GET', ifMatch: '"a"' }, 412, {}],
    ['If-Match: malformed', { method: 'GET', ifMatch: 'nonsense' }, 412],
    ['If-Match fails before If-None-Match would 304', { method: 'GET', ifMatch: '"zz"', ifNoneMatch: '*' }, 412],
    ['If-Unmodified-Since: earlier', { method: 'GET', ifUnmodifiedSince: before }, 412],
    ['If-Unmodified-Since: equal', { method: 'GET', ifUnmodifiedSince: lm }, 'proceed'],
    ['If-Unmodified-Since: invalid, ignored', { method: 'GET', ifUnmodifiedSince: '2030-01-01' }, 'proceed'],
    ['If-Unmodified-Since: twice, ignored', { method: 'GET', ifUnmodifiedSince: [before, before] }, 'proceed'],
    ['If-Unmodified-Since ignored with If-Match', { method: 'GET', ifMatch: '*', ifUnmodifiedSince: before }, 'proceed'],
    ['If-Unmodified-Since without Last-Modified', { method: 'GET', ifUnmodifiedSince: before }, 'proceed', { etag: weakTag }],
    ['If-None-Match: the weak ETag', { method: 'GET', ifNoneMatch: weakTag }, 304],
    ['If-None-Match: its strong twin (weak comparison)', { method: 'GET', ifNoneMatch: '"5-abc"' }, 304],
    ['If-None-Match: in a list', { method: 'HEAD', ifNoneMatch: '"a", W/"5-abc"' }, 304],
    ['If-None-Match: lines of a list', { method: 'GET', ifNoneMatch: ['"a"', 'W/"5-abc"'] }, 304],
    ['If-None-Match: *', { method: 'GET', ifNoneMatch: '*' }, 304],
    ['If-None-Match: another', { method: 'GET', ifNoneMatch: '"other"' }, 'proceed'],
    ['If-None-Match on another method: 412', { method: 'PUT', ifNoneMatch: '*' }, 412],
    ['If-None-Match wins over If-Modified-Since', { method: 'GET', ifNoneMatch: '"other"', ifModifiedSince: after }, 'proceed'],
    ['If-None-Match without an ETag ignores If-Modified-Since', { method: 'GET', ifNoneMatch: '"a"', ifModifiedSince: after }, 'proceed',
      { lastModified: NOV_6_1994 }],
    ['If-Modified-Since: equal', { method: 'GET', ifModifiedSince: lm }, 304],
    ['If-Modified-Since: later', { method: 'HEAD', ifModifiedSince: after }, 304],
    ['If-Modified-Since: earlier', { method: 'GET', ifModifiedSince: before }, 'proceed'],
    ['If-Modified-Since: RFC 850', { method: 'GET', ifModifiedSince: 'Sunday, 06-Nov-94 08:49:37 GMT' }, 304],
    ['If-Modified-Since: asctime', { method: 'GET', ifModifiedSince: 'Sun Nov  6 08:49:37 1994' }, 304],
    ['If-Modified-Since: asctime a second older', { method: 'GET', ifModifiedSince: 'Sun Nov  6 08:49:36 1994' }, 'proceed'],
    ['If-Modified-Since: no GMT', { method: 'GET', ifModifiedSince: 'Sun, 06 Nov 1994 08:49:37' }, 'proceed'],
    ['If-Modified-Since: a year', { method: 'GET', ifModifiedSince: '2099' }, 'proceed'],
    ['If-Modified-Since: twice', { method: 'GET', ifModifiedSince: [lm, lm] }, 'proceed'],
    ['If-Modified-Since: only GET and HEAD', { method: 'POST', ifModifiedSince: lm }, 'proceed'],
    ['If-Modified-Since without Last-Modified', { method: 'GET', ifModifiedSince: lm }, 'proceed', { etag: weakTag }],
  ];
  for (const [what, fields, want, validators] of cases) {
    t.equal(evaluatePreconditions(fields, validators ?? v, NOW), want, what);
  }
});

t.test('If-Range (13.1.5) and Range on GET only (14.2)', async (t) => {
  const lm = 'Sun, 06 Nov 1994 08:49:37 GMT';
  const weak: Validators = { etag: 'W/"5-abc"', lastModified: NOV_6_1994 };
  const strong: Validators = { etag: '"5-abc"', lastModified: NOV_6_1994 };
  t.equal(ifRangeMatches(undefined, weak), true, 'absent');
  t.equal(ifRangeMatches('W/"5-abc"', weak), false, 'a weak ETag never matches');
  t.equal(ifRangeMatches('"5-abc"', weak), false);
  t.equal(ifRangeMatches('"5-abc"', strong), true, 'a strong ETag matches strongly');
  t.equal(ifRangeMatches('W/"5-abc"', strong), false);
  t.equal(ifRangeMatches(lm, weak), true, 'the Last-Modified date');
  t.equal(ifRangeMatches('Sun Nov  6 08:49:37 1994', weak), true, 'the same date, asctime');
  t.equal(ifRangeMatches('Sun, 06 Nov 1994 08:49:38 GMT', weak), false, 'a later date is not an exact match');
  t.equal(ifRangeMatches(lm, { etag: 'W/"x"' }), false, 'no Last-Modified sent');
  t.equal(ifRangeMatches([lm, lm], weak), false, 'received twice');
  t.equal(ifRangeMatches('garbage', weak), false);
  t.same(selectRange('GET', 'bytes=0-1', undefined, weak, 10), { start: 0, end: 1 });
  t.equal(selectRange('HEAD', 'bytes=0-1', undefined, weak, 10), undefined, 'HEAD: ignored');
  t.equal(selectRange('HEAD', 'bytes=50-', undefined, weak, 10), undefined, 'HEAD: not even 416');
  t.equal(selectRange('GET', ['bytes=0-1', 'bytes=2-3'], undefined, weak, 10), undefined, 'Range twice: ignored');
  t.equal(selectRange('GET', 'bytes=0-1', 'W/"5-abc"', weak, 10), undefined, 'If-Range with the weak ETag: whole');
  t.same(selectRange('GET', 'bytes=0-1', lm, weak, 10), { start: 0, end: 1 }, 'If-Range with the date');
});

t.test('parseRange (14.1.1, 14.1.2)', async (t) => {
  const cases: Array<[string, number, ReturnType<typeof parseRange>]> = [
    ['bytes=0-99', 1000, { start: 0, end: 99 }],
    ['bytes=0-', 1000, { start: 0, end: 999 }],
    ['bytes=-1', 1000, { start: 999, end: 999 }],
    ['bytes=-5000', 1000, { start: 0, end: 999 }],
    ['bytes=990-5000', 1000, { start: 990, end: 999 }],
    ['BYTES=1-2', 1000, { start: 1, end: 2 }],
    ['bytes=1-2,', 1000, { start: 1, end: 2 }], // empty list element
    ['bytes=1000-', 1000, 'unsatisfiable'],
    ['bytes=-0', 1000, 'unsatisfiable'],
    ['bytes=0-', 0, 'unsatisfiable'],
    ['bytes=-0', 0, 'unsatisfiable'],
    ['bytes=-1', 0, undefined], // satisfiable, the whole (empty) file: 200
    ['bytes=-100', 0, undefined],
    ['bytes=0-1,5-6', 1000, undefined], // several: the whole file
    ['bytes=5-1', 1000, undefined], // invalid: ignored
    ['bytes=-', 1000, undefined],
    ['bytes=abc', 1000, undefined],
    ['items=0-1', 1000, undefined],
    ['bytes 0-1', 1000, undefined],
    ['', 1000, undefined],
  ];
  for (const [value, size, want] of cases) t.same(parseRange(value, size), want, `${value} of ${size}`);
});

t.test('request targets (RFC 9112 3.2)', async (t) => {
  const cases: Array<[string, string | number]> = [
    ['/a.txt', '/a.txt'],
    ['/a.txt?x=1', '/a.txt'],
    ['/a%20b.txt?x#y', '/a%20b.txt'],
    ['//a.txt', '//a.txt'],
    ['http://example.com/a.txt', '/a.txt'],
    ['http://example.com:8080/sub/b.txt?q=1', '/sub/b.txt'],
    ['HTTPS://EXAMPLE.COM/a.txt', '/a.txt'],
    ['http://example.com', '/'],
    ['http://example.com?q', '/'],
    ['http://[::1]:80/a', '/a'],
    ['http:///a.txt', 400], // empty host
    ['http://user@example.com/a.txt', 400], // userinfo
    ['ftp://example.com/a.txt', 400],
    ['*', 400],
    ['example.com:443', 400], // authority-form
    ['a.txt', 'a.txt'], // a relative path passed by a caller: as before
  ];
  for (const [target, want] of cases) t.equal(requestPath(target), want, target);
});
