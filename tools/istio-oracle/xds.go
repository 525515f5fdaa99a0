package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/version"
)

// XdsRequest asks a running istiod for the config of the client's sidecar and of the egress gateway, as
// those proxies would get it, and walks the probes through it.
type XdsRequest struct {
	// Istiod is istiod's plaintext xDS address (its port 15010).
	Istiod                string            `json:"istiod"`
	OutboundTrafficPolicy string            `json:"outboundTrafficPolicy"`
	Sidecar               XdsProxy          `json:"sidecar"`
	Gateway               XdsProxy          `json:"gateway"`
	VIPs                  map[string]string `json:"vips"`
	Probes                []Probe           `json:"probes"`
	// TimeoutSeconds bounds the whole exchange (default 20).
	TimeoutSeconds int `json:"timeoutSeconds"`
	// Dump adds each proxy's listeners as Envoy's JSON (what `istioctl proxy-config listeners -o json` prints).
	Dump bool `json:"dump"`
}

// XdsProxy is a pod whose proxy connects: the pod as the API server has it. A proxy without a pod is
// not fetched (it has no config).
type XdsProxy struct {
	Pod       string            `json:"pod"`
	Namespace string            `json:"namespace"`
	IP        string            `json:"ip"`
	Labels    map[string]string `json:"labels"`
	// Workload is the pod's Deployment, as the proxy reports it.
	Workload string `json:"workload"`
}

type XdsResponse struct {
	Proxies   map[string]*ProxyReport    `json:"proxies"`
	Verdicts  []Verdict                  `json:"verdicts"`
	Listeners map[string]json.RawMessage `json:"listeners,omitempty"`
}

// LiveMesh fetches both proxies' config from istiod and walks the probes through it.
func LiveMesh(req XdsRequest) (*XdsResponse, error) {
	if req.TimeoutSeconds == 0 {
		req.TimeoutSeconds = 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(req.TimeoutSeconds)*time.Second)
	defer cancel()
	for i := range req.Probes {
		if req.Probes[i].Port == 0 {
			req.Probes[i].Port = req.Probes[i].defaultPort()
		}
	}
	sidecar, err := fetchProxy(ctx, req.Istiod, "sidecar", req.Sidecar)
	if err != nil {
		return nil, fmt.Errorf("the sidecar of %s/%s: %v", req.Sidecar.Namespace, req.Sidecar.Pod, err)
	}
	gateway, err := fetchProxy(ctx, req.Istiod, "router", req.Gateway)
	if err != nil {
		return nil, fmt.Errorf("the egress gateway %s/%s: %v", req.Gateway.Namespace, req.Gateway.Pod, err)
	}
	res := &XdsResponse{Verdicts: []Verdict{}}
	if req.Dump {
		res.Listeners = map[string]json.RawMessage{}
		for _, f := range []*fetched{sidecar, gateway} {
			if res.Listeners[f.role], err = dumpListeners(f.listeners); err != nil {
				return nil, err
			}
		}
	}
	loads := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, f := range []*fetched{sidecar, gateway} {
		for name, cla := range f.endpoints {
			loads[f.role+"/"+name] = cla
		}
	}
	policy := req.OutboundTrafficPolicy
	if policy == "" {
		policy = "ALLOW_ANY"
	}
	m := &meshView{
		outboundPolicy: policy,
		vips:           req.VIPs,
		sidecar:        newProxyConfig("sidecar", sidecar.listeners, sidecar.clusters),
		gateway:        newProxyConfig("gateway", gateway.listeners, gateway.clusters),
		sidecarID:      sidecar.id,
		gatewayID:      gateway.id,
		gatewayIP:      req.Gateway.IP,
	}
	m.eds = func(c *clusterv3.Cluster) []endpoint {
		for _, role := range []string{"sidecar", "gateway"} {
			if cla, ok := loads[role+"/"+edsName(c)]; ok && ownCluster(m, role, c) {
				return loadAssignmentEndpoints(cla)
			}
		}
		return nil
	}
	res.Proxies = map[string]*ProxyReport{"sidecar": m.sidecar.report(m), "gateway": m.gateway.report(m)}
	for _, p := range req.Probes {
		res.Verdicts = append(res.Verdicts, m.walk(p))
	}
	return res, nil
}

func ownCluster(m *meshView, role string, c *clusterv3.Cluster) bool {
	p := m.sidecar
	if role == "gateway" {
		p = m.gateway
	}
	return p.clusters[c.Name] == c
}

func edsName(c *clusterv3.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.Name
}

type fetched struct {
	role      string
	id        string
	listeners []*listenerv3.Listener
	clusters  []*clusterv3.Cluster
	endpoints map[string]*endpointv3.ClusterLoadAssignment
}

// fetchProxy connects to istiod as the pod's proxy (node type sidecar or router) and asks, in Envoy's
// order, for its clusters, their endpoints and its listeners.
func fetchProxy(ctx context.Context, addr, nodeType string, p XdsProxy) (*fetched, error) {
	role := "sidecar"
	if nodeType == "router" {
		role = "gateway"
	}
	if p.Pod == "" {
		return &fetched{role: role, endpoints: map[string]*endpointv3.ClusterLoadAssignment{}}, nil
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to istiod at %s: %v", addr, err)
	}
	defer stream.CloseSend()
	node, err := xdsNode(nodeType, p)
	if err != nil {
		return nil, err
	}
	out := &fetched{role: role, id: p.Pod + "." + p.Namespace, endpoints: map[string]*endpointv3.ClusterLoadAssignment{}}
	ask := func(typeURL string, names []string) (*discovery.DiscoveryResponse, error) {
		if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: names}); err != nil {
			return nil, err
		}
		for {
			res, err := stream.Recv()
			if err != nil {
				return nil, fmt.Errorf("waiting for %s from istiod at %s: %v", typeURL, addr, err)
			}
			if res.TypeUrl == typeURL {
				// Acknowledge, as Envoy does, so that istiod counts the config as delivered.
				_ = stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: names,
					VersionInfo: res.VersionInfo, ResponseNonce: res.Nonce})
				return res, nil
			}
		}
	}
	cds, err := ask(v3.ClusterType, nil)
	if err != nil {
		return nil, err
	}
	if out.clusters, err = decode(cds, func() *clusterv3.Cluster { return &clusterv3.Cluster{} }); err != nil {
		return nil, err
	}
	var edsNames []string
	for _, c := range out.clusters {
		if c.GetType() == clusterv3.Cluster_EDS {
			edsNames = append(edsNames, edsName(c))
		}
	}
	sort.Strings(edsNames)
	if len(edsNames) > 0 {
		eds, err := ask(v3.EndpointType, edsNames)
		if err != nil {
			return nil, err
		}
		loads, err := decode(eds, func() *endpointv3.ClusterLoadAssignment { return &endpointv3.ClusterLoadAssignment{} })
		if err != nil {
			return nil, err
		}
		for _, cla := range loads {
			out.endpoints[cla.ClusterName] = cla
		}
	}
	lds, err := ask(v3.ListenerType, nil)
	if err != nil {
		return nil, err
	}
	if out.listeners, err = decode(lds, func() *listenerv3.Listener { return &listenerv3.Listener{} }); err != nil {
		return nil, err
	}
	return out, nil
}

// dumpListeners prints listeners as Envoy's admin API does: proto JSON with camelCase names.
func dumpListeners(listeners []*listenerv3.Listener) (json.RawMessage, error) {
	out := []json.RawMessage{}
	for _, l := range listeners {
		raw, err := protojson.Marshal(l)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %v", l.Name, err)
		}
		out = append(out, raw)
	}
	return json.Marshal(out)
}

// decode unpacks a discovery response's resources into their messages.
func decode[T proto.Message](res *discovery.DiscoveryResponse, newT func() T) ([]T, error) {
	out := make([]T, 0, len(res.Resources))
	for _, a := range res.Resources {
		m := newT()
		if err := a.UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("%s: %v", res.TypeUrl, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// xdsNode is the Envoy node a proxy of this Istio release presents: its ID
// (TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local) and the metadata istio-agent sends.
func xdsNode(nodeType string, p XdsProxy) (*corev3.Node, error) {
	labels := map[string]any{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	workload := p.Workload
	if workload == "" {
		workload = p.Pod
	}
	meta, err := structpb.NewStruct(map[string]any{
		"ISTIO_VERSION":     version.Info.Version,
		"CLUSTER_ID":        "Kubernetes",
		"NAMESPACE":         p.Namespace,
		"NAME":              p.Pod,
		"POD_NAME":          p.Pod,
		"WORKLOAD_NAME":     workload,
		"LABELS":            labels,
		"INSTANCE_IPS":      p.IP,
		"INTERCEPTION_MODE": "REDIRECT",
		"MESH_ID":           "cluster.local",
		"SERVICE_ACCOUNT":   "default",
	})
	if err != nil {
		return nil, err
	}
	return &corev3.Node{
		Id:       fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", nodeType, p.IP, p.Pod, p.Namespace, p.Namespace),
		Cluster:  workload + "." + p.Namespace,
		Metadata: meta,
	}, nil
}
