/**
 * The simulated lab's mesh: a pure function from the cluster's objects, the Istio installation and one
 * curl from a pod to what curl sees, the external proxy's access-log lines, istiod's push status and
 * what Envoy would reject.
 *
 * It is held to real Istio: test/mesh-differential.test.ts runs every manifest set of
 * test/fixtures/mesh-corpus/ through this model and through the Istio oracle (tools/istio-oracle:
 * istiod's own config generator and Envoy's field rules), and the verdicts, conflicts and NACKs must be
 * the same. Where the model is simpler than Istio, the rule below says so.
 *
 * The path a connection takes, stage by stage:
 * 1. DNS. The pod's resolver knows cluster Services (kube-dns) and public names; Istio's DNS proxying is
 *    off by default, so ServiceEntry hosts are not resolved by the mesh.
 * 2. Interception. Without Istio, or in a pod without a sidecar (or from the istio-proxy container
 *    itself, UID 1337), the connection goes out directly.
 * 3. The sidecar's outbound listener for the destination (the Service's ClusterIP:port, else
 *    0.0.0.0:port): one filter chain per registry service of that port, matched on SNI; a
 *    VirtualService bound to the service (gateway `mesh`) replaces its chain by one per TLS match.
 *    Two chains with the same match are a conflict: istiod keeps the first and reports
 *    `pilot_conflict_outbound_listener_tcp_over_current_tcp` under the key `0.0.0.0_443`. No chain:
 *    REGISTRY_ONLY sends it to the BlackHoleCluster (curl exit 35), ALLOW_ANY passes it through.
 *    Plain text (curl http://) to a port Istio treats as TCP takes the same chains with no SNI: only a
 *    chain without a server-name match (a `tcp` route, or the service's own) takes it.
 * 4. A route's cluster `outbound|port|subset|host`: the service must be visible to the proxy, have the
 *    port, and a named subset must exist in the DestinationRule the proxy sees, found in Istio's order
 *    (the proxy's namespace, then the service's namespace, then the root namespace istio-system, each
 *    subject to exportTo); otherwise istiod builds no cluster and Envoy closes the connection. The
 *    rule's policy (subset fields over top-level ones, port-level settings first) gives TLS to the
 *    upstream (ISTIO_MUTUAL wraps the connection with SNI the rule's `sni`, else
 *    `outbound_.PORT_.SUBSET_.HOST`) and the tunnel (CONNECT or POST to targetHost:targetPort; HTTP/2
 *    when the port's protocol is HTTP2 or GRPC).
 *    EnvoyFilter NETWORK_FILTER MERGE / REPLACE patches (context SIDECAR_OUTBOUND or ANY, selecting the
 *    pod) on the chain's tcp_proxy apply there too: a `tunneling_config` they add makes the sidecar open
 *    the tunnel through the route's cluster.
 * 5. The egress gateway: any gateway Deployment of the installation, with its pods' labels. Its
 *    listener on the Service's target port (443 -> 8443), named 0.0.0.0_8443, comes from Gateway
 *    servers on the Service port, but only when a VirtualService binds a route to them (a host
 *    `ns/name` binds only VirtualServices of namespace ns, `./name` those of the Gateway's namespace):
 *    a PASSTHROUGH server gets one chain per TLS route match, on its SNI; an ISTIO_MUTUAL server
 *    (protocol TLS) one chain on its hosts, which terminates Istio's mTLS and sends what is inside where
 *    the first bound `tcp` route says; a TCP server one chain without a match, routed the same way (plain
 *    text carries no name to match). A chain that passes through what the sidecar wrapped in Istio's
 *    mTLS still tunnels it, but no server outside the mesh can answer it (curl fails); plain TLS to an
 *    ISTIO_MUTUAL chain fails at the gateway.
 *    EnvoyFilter LISTENER ADD patches add theirs, and NETWORK_FILTER MERGE / REPLACE patches on the
 *    tcp_proxy of a generated listener change it. Two listeners with one name, or a tcp_proxy without
 *    stat_prefix or cluster (istiod drops unknown fields of EnvoyFilter values), make Envoy reject the
 *    whole listener update (a NACK): the gateway keeps its earlier listeners, which the model, seeing
 *    one snapshot, treats as none. A chain is picked by SNI; its tcp_proxy names a cluster (an
 *    EnvoyFilter CLUSTER ADD, or one istiod generates as in stage 4) and, with `tunneling_config`,
 *    opens a CONNECT tunnel through it.
 * 6. The external proxy (envoy/envoy.yaml) accepts CONNECT over TLS only. It writes one access-log line
 *    when the tunnel is established (type DownstreamTunnelSuccessfullyEstablished) and one when it closes
 *    (DownstreamEnd, flags `DC`: the gateway ended it after curl; with a real site that closes first the
 *    flags may be `-`, so checks match the type).
 * 7. The server: a public host answers 200 (the sim never contacts the internet); the lab's app machine
 *    is answered by the real nginx, on its mutual-TLS or its plain-HTTP port (the caller runs a real curl
 *    for `appRequest`); a server that is
 *    not the requested host fails curl's certificate check (exit 60) unless `--insecure`.
 *
 * Not modelled: HTTP routes and `http` VirtualService rules (plain-HTTP requests to a port of protocol
 * HTTP follow the registry and the outbound policy only), a Sidecar resource's egress and ingress listeners (its outboundTrafficPolicy
 * is followed: sidecar-resource.ts), merging of several DestinationRules for one host,
 * EnvoyFilter patches other than LISTENER/CLUSTER ADD (on gateways) and NETWORK_FILTER MERGE/REPLACE on
 * tcp_proxy (on gateways and sidecars), a sidecar tcp_proxy patched to another cluster without a tunnel,
 * weights (the heaviest route wins).
 */

/*
 * The model is split by responsibility; this module is its public face, and importers use only it:
 * - types.ts: MeshInput, MeshOutcome, PushStatus and the model's picture of the mesh;
 * - registry.ts: the service registry, DNS, host names and DestinationRule lookups (stages 1 and 4);
 * - listeners.ts and envoy-filters.ts: the sidecar's and the gateway's listeners (stages 3 and 5);
 * - request.ts: the walk of one request, one function per stage; curl-codes.ts: its exit codes;
 * - values.ts: reading loosely typed config.
 */
import type { MeshProbe } from '../../src/mesh/oracle.js';
import type { MeshVerdict } from '../../src/mesh/verdict.js';
import { gatewayConfigNacks, pushStatusOf } from './listeners.js';
import { simulateRequest } from './request.js';
import type { MeshInput, PushStatus } from './types.js';

export { CONFLICT_TCP_OVER_TCP, proxyListeners, pushStatusOf } from './listeners.js';
export { DEMO_GATEWAYS, isGatewayTemplate, publicAddress } from './registry.js';
export { simulateRequest } from './request.js';
export type { MeshInput, MeshObject, MeshOutcome, PushStatus, PushStatusEntry } from './types.js';

/** The verdicts, push status and NACKs for several hosts, as the differential tests compare them. */
export function meshVerdicts(
  input: Omit<MeshInput, 'request'>,
  probes: MeshProbe[],
): { verdicts: MeshVerdict[]; pushStatus: PushStatus; nacks: { sidecar: string[]; gateway: string[] } } {
  const outcomes = probes.map((p) =>
    simulateRequest({
      ...input,
      request: {
        url: p.plain ? `http://${p.host}:${p.port ?? 80}` : `https://${p.host}:${p.port ?? 443}`,
        insecure: false,
      },
    }),
  );
  return {
    verdicts: outcomes.map((o) => o.verdict),
    pushStatus: pushStatusOf(input.resources, [input.source]),
    // The model builds no sidecar config Envoy could reject; the gateways' listeners it checks all.
    nacks: { sidecar: [], gateway: gatewayConfigNacks(input) },
  };
}
