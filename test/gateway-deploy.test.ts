import { gatewayDeployAction } from '../activities/gateway-deploy.js';
import { istioInstallAction } from '../activities/istio-install.js';
import { kubeNamespaceAction } from '../activities/kube-namespace.js';
import type { SimLab } from './support/sim-lab.js';
import { clusterLab } from './support/sim-cluster.js';

describe('gateway.deploy', () => {
  let own: SimLab;
  let shared: SimLab;

  beforeAll(async () => {
    own = await clusterLab({
      configDelay: '0s',
      edit: (def) => {
        def.namespace = 'tunnel-lab-a';
        def.egressGateway = 'own';
      },
    });
    shared = await clusterLab({ configDelay: '0s' });
    for (const lab of [own, shared]) await lab.run(istioInstallAction, { profile: 'demo' });
  }, 120_000);
  afterAll(async () => {
    await own?.close();
    await shared?.close();
  });

  it("is skipped on a lab that uses Istio's shared egress gateway", async () => {
    const result = await shared.run(gatewayDeployAction, {});
    expect(result.output).toEqual({
      skipped: `the lab ${shared.runtime.def.name} uses Istio's shared egress gateway (egressGateway: shared)`,
    });
  });

  it("needs the namespace's sidecar injection: without it the gateway's image `auto` is never replaced", async () => {
    await own.run(kubeNamespaceAction, {});
    const err = await own.run(gatewayDeployAction, { rolloutTimeout: '3s' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/rollout status/);
  }, 60_000);

  it("deploys a gateway of its own in the namespace, its container made Istio's proxy by the gateway template", async () => {
    await own.run(kubeNamespaceAction, { labels: { 'istio-injection': 'enabled' } });
    // The pod made before injection was on stays as it was, as a ReplicaSet's pods do: replace it.
    await own.runtime.kubectl(['-n', 'tunnel-lab-a', 'delete', 'deployment', 'tunnel-lab-egress']);
    const result = await own.run(gatewayDeployAction, {});
    expect(result.evidence).toEqual([expect.stringContaining('"tunnel-lab-egress" successfully rolled out')]);
    const pod = JSON.parse(
      (
        await own.runtime.kubectl([
          '-n',
          'tunnel-lab-a',
          'get',
          'pods',
          '-l',
          'tunnel-lab.io/gateway=tunnel-lab-egress',
          '-o',
          'json',
        ])
      ).stdout,
    ) as { items: { spec: { containers: { name: string; image: string }[]; initContainers?: unknown[] } }[] };
    // The gateway template: its own container became Istio's proxy, with no init container and no second proxy.
    expect(pod.items[0]!.spec.containers).toEqual([
      expect.objectContaining({
        name: 'istio-proxy',
        image: expect.stringMatching(/^docker\.io\/istio\/proxyv2:/),
      }),
    ]);
    expect(pod.items[0]!.spec.initContainers).toBeUndefined();
  }, 60_000);
});
