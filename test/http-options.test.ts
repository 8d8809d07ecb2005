// The pure pieces behind serveFile's and serveStatic's options: maxAge
// (milliseconds or a duration string) and Accept-Encoding negotiation for
// precompressed files (RFC 9110 12.5.3).
import t from 'tap';
import { toMaxAgeSeconds, MAX_AGE_CAP_S } from '../lib/http/max-age';
import { acceptedEncodings, toPrecompressed } from '../lib/http/encoding';
import { varyAcceptEncoding } from '../lib/http/answer';

t.test('maxAge: milliseconds or a duration, whole seconds, capped at a year', async (t) => {
  t.equal(toMaxAgeSeconds(undefined), 0);
  t.equal(toMaxAgeSeconds(0), 0);
  t.equal(toMaxAgeSeconds(999), 0, 'rounded down');
  t.equal(toMaxAgeSeconds(30_000), 30);
  t.equal(toMaxAgeSeconds('30s'), 30);
  t.equal(toMaxAgeSeconds('1h'), 3600);
  t.equal(toMaxAgeSeconds('7d'), 7 * 86400);
  t.equal(toMaxAgeSeconds('2 days'), 2 * 86400);
  t.equal(toMaxAgeSeconds('1.5m'), 90);
  t.equal(toMaxAgeSeconds('5000'), 5, 'a bare number string is milliseconds');
  t.equal(toMaxAgeSeconds('1y'), MAX_AGE_CAP_S);
  t.equal(toMaxAgeSeconds(Infinity), MAX_AGE_CAP_S);
  t.equal(toMaxAgeSeconds('10y'), MAX_AGE_CAP_S);
  t.throws(() => toMaxAgeSeconds(-1), { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' });
  t.throws(() => toMaxAgeSeconds(NaN), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => toMaxAgeSeconds('soon'), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => toMaxAgeSeconds('-1h'), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => toMaxAgeSeconds(true), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
});

t.test('precompressed option', async (t) => {
  t.same(toPrecompressed(undefined), []);
  t.same(toPrecompressed(false), []);
  t.same(toPrecompressed(true), ['br', 'gzip']);
  t.same(toPrecompressed(['gzip', 'br', 'gzip']), ['gzip', 'br'], 'duplicates dropped, order kept');
  t.throws(() => toPrecompressed(['deflate']), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => toPrecompressed('br'), { code: 'ERR_INVALID_ARG_TYPE' });
});

t.test('Accept-Encoding: q-values, *, identity, x-gzip, malformed', async (t) => {
  const both = ['br', 'gzip'] as const;
  t.same(acceptedEncodings(undefined, both), [], 'no field: no coding');
  t.same(acceptedEncodings('', both), []);
  t.same(acceptedEncodings('gzip, deflate, br', both), ['br', 'gzip'], 'equal weights: the server order');
  t.same(acceptedEncodings('gzip;q=1, br;q=0.5', both), ['gzip', 'br'], 'higher q first');
  t.same(acceptedEncodings('br;q=0, gzip', both), ['gzip'], 'q=0 refuses');
  t.same(acceptedEncodings('*', both), ['br', 'gzip']);
  t.same(acceptedEncodings('*;q=0.1, gzip;q=0.5', both), ['gzip', 'br'], 'an explicit entry beats *');
  t.same(acceptedEncodings('*;q=0', both), []);
  t.same(acceptedEncodings('identity;q=0', both), [], 'identity;q=0 does not accept any coding');
  t.same(acceptedEncodings('x-gzip', both), ['gzip']);
  t.same(acceptedEncodings('GZIP', both), ['gzip'], 'case-insensitive');
  t.same(acceptedEncodings('br;q=abc, gzip', both), ['gzip'], 'a malformed q is 0');
  t.same(acceptedEncodings('br;q=1.5', both), [], 'q above 1 is malformed');
  t.same(acceptedEncodings(['gzip', 'br;q=0.2'], both), ['gzip', 'br'], 'repeated lines are one list');
  t.same(acceptedEncodings('br', ['gzip']), [], 'only what the server offers');
});

t.test('Vary: Accept-Encoding is appended once, never to *', async (t) => {
  t.equal(varyAcceptEncoding(undefined), 'Accept-Encoding');
  t.equal(varyAcceptEncoding('Accept-Language'), 'Accept-Language, Accept-Encoding');
  t.equal(varyAcceptEncoding(['Accept-Language', 'Cookie']), 'Accept-Language, Cookie, Accept-Encoding');
  t.equal(varyAcceptEncoding('accept-encoding'), 'accept-encoding');
  t.equal(varyAcceptEncoding('*'), '*');
});
