/**
 * A lab machine that is a pod of the cluster (a forward proxy that runs in it): log.mark and log.expect
 * read its container's log with `kubectl logs --timestamps` through the API server instead of over ssh,
 * here against the simulated cluster, whose kubectl plays the container runtime's part (sim/kubectl/logs.ts).
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { logExpectAction } from '../activities/log-expect.js';
import { logMarkAction } from '../activities/log-mark.js';
import { proxyCredentialAction } from '../activities/proxy-credential.js';
import { loadLab } from '../src/lab/definition.js';
import { compareTimes, linesAfter, parseStamped, type StampedLine } from '../src/lab/pod-log.js';
import { existingLabOn, failure, proxyPodManifest, type ExistingLab } from './support/existing-lab.js';
import { clusterLab } from './support/sim-cluster.js';
import type { SimLab } from './support/sim-lab.js';
import { root } from './support/temporal.js';

describe('reading a pod log by its timestamps', () => {
  const line = (time: string, text: string): StampedLine => ({ time, text });

  it('orders kubectl times whose fractions have their trailing zeros trimmed', () => {
    expect(compareTimes('2026-12-03T10:00:00.5Z', '2026-12-03T10:00:00.123456789Z')).toBeGreaterThan(0);
    expect(compareTimes('2026-12-03T10:00:00Z', '2026-12-03T10:00:00.000000001Z')).toBeLessThan(0);
    expect(compareTimes('2026-12-03T11:00:00+01:00', '2026-12-03T10:00:00Z')).toBe(0);
  });

  it('keeps the stamped lines', () => {
    expect(parseStamped('2026-12-03T10:00:00.1Z a b\nnot stamped\n2026-12-03T10:00:01Z c\n')).toEqual([
      line('2026-12-03T10:00:00.1Z', 'a b'),
      line('2026-12-03T10:00:01Z', 'c'),
    ]);
  });

  it('takes the lines after a cursor, those of its very time beyond the ones already counted too', () => {
    const lines = [
      line('2026-12-03T10:00:00.1Z', 'old'),
      line('2026-12-03T10:00:00.2Z', 'at the mark'),
      line('2026-12-03T10:00:00.2Z', 'same time, after the mark'),
      line('2026-12-03T10:00:00.3Z', 'new'),
    ];
    const after = linesAfter(lines, { time: '2026-12-03T10:00:00.2Z', atTime: 1 });
    expect(after.fresh.map((l) => l.text)).toEqual(['same time, after the mark', 'new']);
    expect(after.cursor).toEqual({ time: '2026-12-03T10:00:00.3Z', atTime: 1 });
    expect(linesAfter([], after.cursor)).toEqual({ fresh: [], cursor: after.cursor });
    expect(linesAfter(lines, { time: null, atTime: 0 }).fresh).toHaveLength(4);
  });
});

describe('a proxy that is a pod (lab of kind existing, simulated cluster)', () => {
  let lab: SimLab;
  /** The file the sim hands out as the proxy container's output. */
  let output: string;

  let run: ExistingLab['run'];
  const kubectl = (...args: string[]) => lab.runtime.kubectl(args, { check: false });

  beforeAll(async () => {
    lab = await clusterLab({ configDelay: '0s' });
    output = path.join(lab.labState, 'vms', 'external-proxy', 'var', 'log', 'corp', 'access.log');
    await mkdir(path.dirname(output), { recursive: true });
    await writeFile(output, 'written before anyone looked\n');
    const manifest = path.join(lab.stateRoot, 'corp-proxy.yaml');
    await writeFile(
      manifest,
      proxyPodManifest({ container: 'proxy', machine: 'external-proxy', path: '/var/log/corp/access.log' }, [
        { name: 'proxy', image: 'envoyproxy/envoy:v1.36.4' },
        { name: 'exporter', image: 'prom/statsd-exporter:v0.28.0' },
      ]),
    );
    expect((await kubectl('apply', '-f', manifest)).exitCode).toBe(0);
    expect((await kubectl('-n', 'corp-proxy', 'rollout', 'status', 'deployment/corp-proxy')).exitCode).toBe(
      0,
    );

    ({ run } = await existingLabOn(lab, 'corp', {
      machines: {
        'external-proxy': {
          role: 'proxy',
          ip: '10.0.0.10',
          pod: { namespace: 'corp-proxy', name: 'deployment/corp-proxy' },
          files: { accessLog: 'proxy', authRoutes: 'proxy' },
        },
      },
    }));
  }, 60_000);
  afterAll(() => lab?.close());

  it("the sim's kubectl logs stamps a container's lines once, in order, and cuts --since-time to its second", async () => {
    await appendFile(output, 'second line\n');
    const logs = (...flags: string[]) =>
      kubectl('-n', 'corp-proxy', 'logs', 'deployment/corp-proxy', '-c', 'proxy', ...flags);
    const first = parseStamped((await logs('--timestamps')).stdout);
    expect(first.map((l) => l.text)).toEqual(['written before anyone looked', 'second line']);
    expect(compareTimes(first[1]!.time, first[0]!.time)).toBeGreaterThan(0);
    expect(parseStamped((await logs('--timestamps')).stdout)).toEqual(first);
    expect((await logs('--tail=1')).stdout).toBe('second line');
    const since = first[1]!.time;
    const sinceSecond = (await logs('--timestamps', `--since-time=${since}`)).stdout;
    // The API server keeps whole seconds: the line of the `since` time itself is there.
    expect(parseStamped(sinceSecond).map((l) => l.text)).toContain('second line');

    expect((await kubectl('-n', 'corp-proxy', 'logs', 'deployment/corp-proxy')).stderr).toMatch(
      /a container name must be specified for pod corp-proxy-\S+, choose one of: \[proxy exporter\]/,
    );
    const other = await kubectl('-n', 'corp-proxy', 'logs', 'deployment/corp-proxy', '-c', 'nginx');
    expect(other.stderr).toMatch(/container nginx is not valid for pod corp-proxy-/);
    const exporter = await kubectl('-n', 'corp-proxy', 'logs', 'deployment/corp-proxy', '-c', 'exporter');
    expect(exporter).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('log.mark and log.expect read the container log through the API server: lines after the mark only', async () => {
    const mark = await run(logMarkAction, { machine: 'external-proxy', file: 'accessLog', name: 'm1' });
    expect(mark.output).toMatchObject({
      name: 'm1',
      machine: 'external-proxy',
      path: 'corp-proxy/deployment/corp-proxy container proxy',
      cursor: { time: expect.stringMatching(/^\d{4}-/), atTime: 1 },
    });
    const target = { machine: 'external-proxy', file: 'accessLog', since: 'm1' };

    const waiting = run(logExpectAction, { ...target, pattern: 'CONNECT a', count: 1, within: '10s' });
    await new Promise((r) => setTimeout(r, 700));
    await appendFile(output, '"CONNECT a:443 - HTTP/1.1" - 200\nsomething else\n');
    const seen = await waiting;
    expect(seen.output).toMatchObject({ matches: ['"CONNECT a:443 - HTTP/1.1" - 200'] });

    // The lines from before the mark do not count: the file's first lines match /line/.
    const old = await failure(run(logExpectAction, { ...target, pattern: 'line|looked', within: '1s' }));
    expect(old).toMatchObject({ type: 'ExpectationError' });
    expect(old?.message).toMatch(
      /no line matching \/line\|looked\/ in external-proxy:corp-proxy\/deployment/,
    );

    const forbidden = await failure(
      run(logExpectAction, { ...target, pattern: 'CONNECT', absent: true, within: '1s' }),
    );
    expect(forbidden?.message).toMatch(/expected no line matching \/CONNECT\/.*found: "CONNECT a:443/);

    await appendFile(output, '"CONNECT a:443 - HTTP/1.1" - 200\n');
    const extra = await failure(
      run(logExpectAction, { ...target, pattern: 'CONNECT a', count: 1, within: '2s' }),
    );
    expect(extra?.message).toMatch(/expected 1 line\(s\) matching \/CONNECT a\/ .* found 2/);
  }, 60_000);

  it('says what is wrong with the lab file, and does not write files into the pod', async () => {
    const absolute = await failure(
      run(logMarkAction, { machine: 'external-proxy', file: '/var/log/x', name: 'm2' }),
    );
    expect(absolute).toMatchObject({ type: 'LabConfigError' });
    expect(absolute?.message).toMatch(
      /is a pod: its logs are what its containers write, so a step names one of its files \(accessLog, authRoutes\), not \/var\/log\/x/,
    );

    const credential = await run(proxyCredentialAction, {
      machine: 'external-proxy',
      file: 'authRoutes',
      state: 'present',
    });
    expect(credential.skipped).toMatch(/is a pod of the cluster, whose files a run does not write/);

    const both = path.join(lab.stateRoot, 'both.yaml');
    await writeFile(
      both,
      stringify({
        name: 'both',
        kind: 'existing',
        tools: { kubectl: 'kubectl', istioctl: 'istioctl' },
        cluster: { kubeconfig: '/dev/null' },
        machines: {
          p: {
            role: 'proxy',
            ip: '10.0.0.10',
            pod: { namespace: 'corp-proxy', name: 'corp proxy' },
            ssh: { host: 'h', user: 'u', agent: true, hostKey: 'any' },
          },
        },
        network: { proxyPort: 3128, appPort: 443 },
      }),
    );
    const load = await failure(loadLab(both, { projectRoot: root, stateDir: lab.stateRoot }));
    expect(load?.message).toMatch(/machines\.p\.pod\.name.*must be a pod name, or TYPE\/NAME/s);
    expect(load?.message).toMatch(/machines\.p\.pod.*reached either over ssh or as a pod/s);
  });
});
