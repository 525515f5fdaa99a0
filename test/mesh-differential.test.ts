/**
 * The differential corpus: every manifest set in test/fixtures/mesh-corpus/ through the Istio oracle
 * (istiod's config generator and Envoy's field rules, built from tools/istio-oracle) and through the
 * simulated lab's model. The oracle must give what the case says real Istio gives; the model must give
 * what the oracle gives, host by host, with the same conflicts and NACKs.
 */
import { projectRoot } from '../src/config.js';
import { oracleRequest } from '../src/mesh/manifest-set.js';
import { ensureOracle, runOracle, type OracleResponse } from '../src/mesh/oracle.js';
import { verdictKey } from '../src/mesh/verdict.js';
import { caseModelAnswer, loadCorpus, type CorpusCase } from './support/mesh-corpus.js';

const cases: CorpusCase[] = await loadCorpus();
const answers = new Map<string, OracleResponse>();

beforeAll(async () => {
  const oracle = await ensureOracle(projectRoot(), (line) => console.log(line));
  for (const c of cases) {
    answers.set(c.name, await runOracle(oracle, oracleRequest(c.set, c.settings, c.meshProbes)));
  }
}, 1_800_000);

function oracleSummary(c: CorpusCase) {
  const a = answers.get(c.name)!;
  return {
    verdicts: Object.fromEntries(a.verdicts.map((v, i) => [c.probes[i], verdictKey(v)])),
    pushStatus: a.pushStatus,
    nacks: {
      sidecar: (a.proxies.sidecar.nacks ?? []).length > 0,
      gateway: (a.proxies.gateway.nacks ?? []).length > 0,
    },
  };
}

function modelSummary(c: CorpusCase) {
  const m = caseModelAnswer(c);
  expect(m.rejected).toEqual([]);
  return {
    verdicts: Object.fromEntries(m.verdicts.map((v, i) => [c.probes[i], verdictKey(v)])),
    pushStatus: m.pushStatus,
    nacks: { sidecar: m.nacks.sidecar.length > 0, gateway: m.nacks.gateway.length > 0 },
  };
}

test('the corpus has at least 20 cases', () => {
  expect(cases.length).toBeGreaterThanOrEqual(20);
});

test('the oracle gives what each case says real Istio gives', () => {
  const seen = cases.map((c) => {
    const a = answers.get(c.name)!;
    const nack = (a.proxies.gateway.nacks ?? []).length
      ? 'gateway'
      : (a.proxies.sidecar.nacks ?? []).length
        ? 'sidecar'
        : undefined;
    return {
      case: c.name,
      verdicts: Object.fromEntries(a.verdicts.map((v, i) => [c.probes[i], v.verdict])),
      conflicts: Object.keys(a.pushStatus).sort(),
      nack,
    };
  });
  expect(seen).toEqual(
    cases.map((c) => ({ case: c.name, verdicts: c.expect, conflicts: c.conflicts, nack: c.nack })),
  );
});

describe('the model agrees with the oracle', () => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    if (c.difference) {
      expect(modelSummary(c)).not.toEqual(oracleSummary(c));
    } else {
      expect(modelSummary(c)).toEqual(oracleSummary(c));
    }
  });
});

test.each([
  ['envoyfilter-proxy-auth', 'Basic dHVubmVsLWxhYjpjb3JwdXM=', 'gateway'],
  ['envoyfilter-tunnel-from-sidecar-proxy-auth', 'Basic dHVubmVsLWxhYjpzaWRlY2Fy', 'sidecar'],
])(
  "a tunnel's Proxy-Authorization reaches the verdicts of both engines, as a fingerprint in their keys (%s)",
  (name, header, exit) => {
    const c = cases.find((one) => one.name === name)!;
    const oracle = answers.get(c.name)!.verdicts.find((v) => v.host === 'www.google.com')!;
    const model = caseModelAnswer(c).verdicts.find((v) => v.host === 'www.google.com')!;
    for (const v of [oracle, model]) {
      expect(v).toMatchObject({
        exit,
        proxy: '192.168.56.10:3130',
        proxyTls: true,
        proxyAuthorization: header,
      });
      expect(verdictKey(v)).toMatch(/ Proxy-Authorization sha256:[0-9a-f]{12}$/);
      expect(`${verdictKey(v)} ${v.path.join(' ')}`).not.toContain(header.slice('Basic '.length));
    }
  },
);
