/**
 * The mesh model's data: what a caller passes in and gets back (MeshInput, MeshOutcome, PushStatus),
 * and the model's own picture of the mesh (registry services, sidecar filter chains, gateway listeners
 * and the clusters they name) that the registry, listener and request modules share.
 */
import type { MeshVerdict } from '../../src/mesh/verdict.js';
import type { ProxyFiles, ProxyListener, TunnelAsk } from './proxy-listeners.js';
import type { Obj } from './values.js';

/** A Kubernetes object as stored by the simulated API server. */
/** A tunnel the mesh opens to the lab's proxy for one request, as the proxy sees it, and what it carries. */
export type MeshTunnelRequest = TunnelAsk & {
  authority: string;
  /**
   * The sidecar's Istio mTLS, passed through the gateway unopened, is what goes through the tunnel: the
   * server at the far end gets Istio's handshake instead of the client's own TLS.
   */
  istioMutualInside?: boolean;
};

export interface MeshObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface MeshInput {
  /** The cluster's objects, oldest first (Istio orders services and configs by creation time). */
  resources: MeshObject[];
  /** The Istio installation, when there is one. */
  istio?: {
    outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
    /** Gateway Deployments of the installation (`namespace/name`); the demo profile's by default. */
    gateways?: string[];
  };
  lab: {
    /** The Kubernetes node's address: pod traffic leaving the node is masqueraded to it. */
    nodeIp: string;
    /** The external proxy: its address and the listeners its Envoy config declares (VM ports). */
    proxy?: { ip: string; listeners: ProxyListener[]; files?: ProxyFiles };
    app?: LabApp;
  };
  source: {
    pod: string;
    namespace: string;
    /** The pod's labels (EnvoyFilter workload selectors); none when unknown. */
    labels?: Record<string, string>;
    /** The pod has an istio-proxy sidecar and curl does not run in it. */
    sidecar: boolean;
  };
  request: { url: string; insecure: boolean };
  /** When the request starts (the access log's START_TIME). */
  now: Date;
  /** The source port the node picks for the tunnel to the proxy. */
  sourcePort: number;
}

export interface PushStatusEntry {
  proxy: string;
  message: string;
}

/** istiod's `/debug/push_status` body: metric name -> listener -> entry; `{}` when clean. */
export type PushStatus = Record<string, Record<string, PushStatusEntry>>;

export interface MeshOutcome {
  /** curl's exit code: 0 once an HTTP response arrived. */
  exitCode: number;
  /** 0 when there was no HTTP response (curl's `000`). */
  httpCode: number;
  /** curl's error text, without the `curl: (N) ` prefix. */
  error?: string;
  /** The address curl connected to. */
  remoteIp?: string;
  /** Lines the external proxy appends to its access log. */
  proxyLogLines: string[];
  /** Set when the lab's app machine answers: the caller runs a real curl against it. */
  appRequest?: AppRequest;
  /**
   * Set when the mesh opens a tunnel to the lab's proxy, served or not: the caller may open it through
   * the real proxy, which then decides, instead of taking `proxyLogLines` and the modelled answer.
   */
  tunnelRequest?: MeshTunnelRequest;
  /** Conflicts istiod reports for the source pod's proxy. */
  pushStatus: PushStatus;
  /** Where the mesh sends the connection, in the shape the Istio oracle answers in. */
  verdict: MeshVerdict;
  /** One line per decision, for the sim's trace log and for reviewers. */
  trace: string[];
}

/** A port of a registry service. */
export interface Port {
  number: number;
  protocol: string;
  name: string;
  targetPort?: number;
}

/** A service in istiod's registry: one host of a ServiceEntry, or a Kubernetes Service. */
export interface RegistryService {
  host: string;
  namespace: string;
  kind: 'ServiceEntry' | 'Service';
  ports: Port[];
  addresses: string[];
  resolution: string;
  /** Endpoint addresses (IPs or host names), with their port when known. */
  endpoints: { address: string; port?: number }[];
  exportTo?: string[];
  clusterIp?: string;
  /** For Kubernetes Services: the pod labels it selects. */
  selector?: Record<string, string>;
}

/** A route's destination as a VirtualService names it. */
export interface Destination {
  host: string;
  port?: number;
  subset?: string;
  /** Namespace of the VirtualService, for short host names. */
  namespace: string;
}

/** One filter chain of the sidecar's outbound listener. */
export interface Chain {
  /** `server_names` of the chain; null matches any connection (a TCP service or a `tcp` route). */
  sni: string[] | null;
  service: RegistryService;
  /** Where the chain sends traffic; undefined: the service's own endpoints. */
  route?: Destination;
  origin: string;
}

/** Where a connection finally goes. */
export interface Target {
  ip: string;
  port: number;
  /** Whose certificate the server presents. */
  serverHost: string;
}

/** A gateway pod's identity: the Deployment's namespace and its pods' labels. */
export interface GatewayIdentity {
  namespace: string;
  labels: Record<string, string>;
}

/** One listener of the egress gateway as Envoy would receive it. */
export interface GatewayListener {
  name: string;
  origin: string;
  chains: {
    sni: string[] | null;
    tcpProxy: Obj | undefined;
    origin: string;
    /** The chain terminates Istio's mTLS (a Gateway server with tls mode ISTIO_MUTUAL). */
    istioMutual?: boolean;
  }[];
}

/** What a cluster connects to and how. */
export interface ClusterTarget {
  name: string;
  endpoint?: { ip: string; port: number };
  tls: boolean;
  http2: boolean;
}

/** The external app machine: its address, its mutual-TLS port and its plain-HTTP port (VM ports). */
export interface LabApp {
  ip: string;
  port: number;
  httpPort: number;
}

/**
 * A request that reaches the lab's app machine: the URL's host and port, how it got there, and which of
 * nginx's servers takes it (its mutual-TLS port or its plain-HTTP port).
 */
export interface AppRequest {
  host: string;
  port: number;
  via: 'direct' | 'tunnel';
  server: 'tls' | 'http';
}
