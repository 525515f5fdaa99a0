package main

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	udpatype "github.com/cncf/xds/go/udpa/type/v1"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/host"
)

// Verdict says where one connection from the client pod (TLS, or plain HTTP) goes.
type Verdict struct {
	Host string `json:"host"`
	Port uint32 `json:"port"`
	// Verdict is blocked (refused by the sidecar's outbound policy), direct (leaves the mesh towards
	// the host itself), tunnel (an HTTP CONNECT or POST tunnel through a proxy) or fail (the
	// connection fails on the way, see Reason).
	Verdict string `json:"verdict"`
	// Exit is the proxy the connection leaves the mesh from: sidecar or gateway.
	Exit string `json:"exit,omitempty"`
	// For tunnels: the proxy's address, the tunnel's authority, method and HTTP version, and whether
	// the connection to the proxy uses TLS.
	Proxy     string `json:"proxy,omitempty"`
	Authority string `json:"authority,omitempty"`
	Method    string `json:"method,omitempty"`
	Protocol  string `json:"protocol,omitempty"`
	ProxyTLS  bool   `json:"proxyTls,omitempty"`
	// ProxyAuthorization is the Proxy-Authorization header among the tunnel's headers_to_add: a
	// credential, which the notes on the path never show.
	ProxyAuthorization string `json:"proxyAuthorization,omitempty"`
	// Upstream is where a direct connection goes (host:port or ip:port).
	Upstream string   `json:"upstream,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Path     []string `json:"path"`
}

// ProxyReport is a compact view of one proxy's config: enough to read the walk.
type ProxyReport struct {
	ID        string           `json:"id"`
	Listeners []ListenerReport `json:"listeners"`
	Clusters  []ClusterReport  `json:"clusters"`
	// Nacks are the reasons Envoy would reject this config (the whole listener or cluster update).
	Nacks []string `json:"nacks,omitempty"`
	// Extensions are the typed_config types the config uses; the ones outside upstream Envoy are Istio's own.
	Extensions []string `json:"extensions"`
}

type ListenerReport struct {
	Name    string        `json:"name"`
	Address string        `json:"address"`
	Chains  []ChainReport `json:"chains,omitempty"`
}

type ChainReport struct {
	Name              string   `json:"name,omitempty"`
	ServerNames       []string `json:"serverNames,omitempty"`
	DestinationPort   uint32   `json:"destinationPort,omitempty"`
	TransportProtocol string   `json:"transportProtocol,omitempty"`
	Cluster           string   `json:"cluster,omitempty"`
	TunnelHostname    string   `json:"tunnelHostname,omitempty"`
	Filters           []string `json:"filters"`
}

type ClusterReport struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Endpoints []string `json:"endpoints,omitempty"`
	TLS       bool     `json:"tls,omitempty"`
	SNI       string   `json:"sni,omitempty"`
	HTTP2     bool     `json:"http2,omitempty"`
}

type proxyConfig struct {
	role      string
	listeners []*listenerv3.Listener
	clusters  map[string]*clusterv3.Cluster
	names     []string
	nacks     []string
	// ldsRejected: Envoy refuses the whole listener update (e.g. two listeners with one name).
	ldsRejected bool
}

func newProxyConfig(role string, listeners []*listenerv3.Listener, clusters []*clusterv3.Cluster) *proxyConfig {
	p := &proxyConfig{role: role, listeners: listeners, clusters: map[string]*clusterv3.Cluster{}}
	seen := map[string]bool{}
	for _, l := range listeners {
		if seen[l.Name] {
			// Envoy's LDS: "duplicate listener NAME found" rejects the update as a whole.
			p.nacks = append(p.nacks, fmt.Sprintf("LDS: duplicate listener %s found", l.Name))
			p.ldsRejected = true
		}
		seen[l.Name] = true
		for _, e := range validateProto(l) {
			p.nacks = append(p.nacks, fmt.Sprintf("LDS: listener %s: %s", l.Name, e))
			p.ldsRejected = true
		}
	}
	for _, c := range clusters {
		if _, dup := p.clusters[c.Name]; dup {
			p.nacks = append(p.nacks, fmt.Sprintf("CDS: duplicate cluster %s found", c.Name))
		}
		for _, e := range validateProto(c) {
			p.nacks = append(p.nacks, fmt.Sprintf("CDS: cluster %s: %s", c.Name, e))
		}
		p.clusters[c.Name] = c
		p.names = append(p.names, c.Name)
	}
	return p
}

func (p *proxyConfig) report(m *meshView) *ProxyReport {
	r := &ProxyReport{Nacks: p.nacks}
	if p.role == "sidecar" {
		r.ID = m.sidecarID
	} else {
		r.ID = m.gatewayID
	}
	for _, l := range p.listeners {
		lr := ListenerReport{Name: l.Name, Address: socketAddress(l.GetAddress())}
		for _, fc := range l.FilterChains {
			cr := ChainReport{Name: fc.Name}
			if match := fc.FilterChainMatch; match != nil {
				cr.ServerNames = match.ServerNames
				cr.DestinationPort = match.GetDestinationPort().GetValue()
				cr.TransportProtocol = match.TransportProtocol
			}
			for _, f := range fc.Filters {
				cr.Filters = append(cr.Filters, f.Name)
				if tp := tcpProxyOf(f); tp != nil {
					cr.Cluster = tcpCluster(tp)
					cr.TunnelHostname = tp.GetTunnelingConfig().GetHostname()
				}
			}
			lr.Chains = append(lr.Chains, cr)
		}
		r.Listeners = append(r.Listeners, lr)
	}
	types := map[string]bool{}
	collect := func(path string, a *anypb.Any) {
		url := a.GetTypeUrl()
		if url == "type.googleapis.com/udpa.type.v1.TypedStruct" || url == "type.googleapis.com/xds.type.v3.TypedStruct" {
			ts := &udpatype.TypedStruct{}
			if a.UnmarshalTo(ts) == nil {
				url += " (" + ts.GetTypeUrl() + ")"
			}
		}
		types[url] = true
	}
	for _, l := range p.listeners {
		eachAny(l.ProtoReflect(), "", collect)
	}
	for _, c := range p.clusters {
		eachAny(c.ProtoReflect(), "", collect)
	}
	r.Extensions = []string{}
	for t := range types {
		r.Extensions = append(r.Extensions, strings.TrimPrefix(t, "type.googleapis.com/"))
	}
	sort.Strings(r.Extensions)
	sort.Strings(p.names)
	for _, name := range p.names {
		c := p.clusters[name]
		cr := ClusterReport{Name: name, Type: clusterType(c)}
		for _, ep := range m.clusterEndpoints(c) {
			cr.Endpoints = append(cr.Endpoints, ep.String())
		}
		if ts := transportSocket(c, nil); ts != nil {
			cr.TLS, cr.SNI = true, ts.Sni
		}
		cr.HTTP2 = usesHTTP2(c)
		r.Clusters = append(r.Clusters, cr)
	}
	return r
}

// meshView is the config of the client's sidecar and of the egress gateway, as generated offline or as
// istiod sent it, and what the walk needs besides: service addresses and EDS endpoints.
type meshView struct {
	outboundPolicy string
	vips           map[string]string
	sidecar        *proxyConfig
	gateway        *proxyConfig
	sidecarID      string
	gatewayID      string
	// gatewayIP is the egress gateway pod's address: a connection there is handed to the gateway's config.
	gatewayIP string
	// eds gives an EDS cluster's endpoints (istiod's endpoint index offline, its EDS answer live).
	eds func(c *clusterv3.Cluster) []endpoint
}

// connection is what Envoy's filter chain match sees of a downstream connection: its destination, the
// transport protocol the TLS inspector reports (tls or raw_buffer), the SNI and the application protocols
// (ALPN for TLS; for plain text what Istio's HTTP inspector detects).
type connection struct {
	dstIP     string
	dstPort   uint32
	transport string
	sni       string
	alpn      []string
}

type endpoint struct {
	address string
	port    uint32
	tlsMode string
}

func (e endpoint) String() string { return fmt.Sprintf("%s:%d", e.address, e.port) }

// walk follows one `curl https://HOST:PORT` (or, for a plain probe, `curl http://HOST:PORT`) from the
// client pod through the sidecar and, when routed there, the egress gateway, the way Envoy would with
// this config.
func (m *meshView) walk(p Probe) Verdict {
	v := Verdict{Host: p.Host, Port: p.Port, Path: []string{}}
	dst := publicIP
	if vip, ok := m.vips[p.Host]; ok {
		dst = vip
	}
	v.note("dns: %s -> %s", p.Host, dst)
	conn := connection{dstIP: dst, dstPort: p.Port, transport: "tls", sni: p.Host, alpn: []string{"h2", "http/1.1"}}
	if p.Plain {
		conn = connection{dstIP: dst, dstPort: p.Port, transport: "raw_buffer", alpn: []string{"http/1.1"}}
	}
	m.hop(m.sidecar, conn, &v)
	return v
}

func (v *Verdict) note(format string, args ...any) {
	v.Path = append(v.Path, fmt.Sprintf(format, args...))
}

func (m *meshView) hop(proxy *proxyConfig, conn connection, v *Verdict) {
	note := v.note
	fail := func(reason string) {
		v.Verdict, v.Reason = "fail", reason
		note("%s: %s", proxy.role, reason)
	}
	if proxy.ldsRejected {
		fail("Envoy rejected the listener update (" + strings.Join(proxy.nacks, "; ") +
			"); the proxy keeps the listeners it had before")
		return
	}
	l := proxy.listenerFor(conn)
	if l == nil {
		fail(fmt.Sprintf("no listener for %s:%d", conn.dstIP, conn.dstPort))
		return
	}
	fc := matchFilterChain(l, conn)
	if fc == nil {
		fail(fmt.Sprintf("listener %s has no filter chain for %s on port %d", l.Name, conn.describe(), conn.dstPort))
		return
	}
	note("%s: listener %s, filter chain %s (server_names %v)", proxy.role, l.Name, chainName(fc), fc.GetFilterChainMatch().GetServerNames())
	var tp *tcpproxy.TcpProxy
	for _, f := range fc.Filters {
		if t := tcpProxyOf(f); t != nil {
			tp = t
		}
	}
	if tp == nil {
		fail(fmt.Sprintf("filter chain %s has no tcp_proxy for this traffic", chainName(fc)))
		return
	}
	name := tcpCluster(tp)
	switch name {
	case "BlackHoleCluster":
		v.Verdict, v.Exit = "blocked", proxy.role
		v.Reason = "BlackHoleCluster (outboundTrafficPolicy " + m.outboundPolicy + ")"
		note("%s: %s", proxy.role, v.Reason)
		return
	case "PassthroughCluster":
		v.Verdict, v.Exit, v.Upstream = "direct", proxy.role, fmt.Sprintf("%s:%d", conn.dstIP, conn.dstPort)
		note("%s: PassthroughCluster to the original destination %s", proxy.role, v.Upstream)
		return
	}
	c := proxy.clusters[name]
	if c == nil {
		fail(fmt.Sprintf("tcp_proxy names cluster %q, which the proxy does not have", name))
		return
	}
	eps := m.clusterEndpoints(c)
	if len(eps) == 0 && c.GetType() != clusterv3.Cluster_ORIGINAL_DST {
		fail(fmt.Sprintf("cluster %s has no endpoints", name))
		return
	}
	var ep endpoint
	if len(eps) > 0 {
		ep = eps[0]
	} else {
		ep = endpoint{address: conn.dstIP, port: conn.dstPort}
	}
	ts := transportSocket(c, &ep)
	if tc := tp.GetTunnelingConfig(); tc != nil {
		v.Verdict, v.Exit = "tunnel", proxy.role
		v.Proxy = ep.String()
		v.Authority = strings.ReplaceAll(tc.GetHostname(), "%REQUESTED_SERVER_NAME%", conn.sni)
		v.Method = "CONNECT"
		if tc.GetUsePost() {
			v.Method = "POST"
		}
		v.Protocol = "HTTP/1.1"
		if usesHTTP2(c) {
			v.Protocol = "HTTP/2"
		}
		v.ProxyTLS = ts != nil
		with := ""
		for _, h := range tc.GetHeadersToAdd() {
			if strings.EqualFold(h.GetHeader().GetKey(), "proxy-authorization") {
				v.ProxyAuthorization = h.GetHeader().GetValue()
				with = ", with Proxy-Authorization"
			}
		}
		note("%s: tcp_proxy tunnels %s %s over cluster %s to %s (%s, TLS %v%s)", proxy.role, v.Method, v.Authority, name, v.Proxy, v.Protocol, v.ProxyTLS, with)
		return
	}
	if proxy.role == "sidecar" && ep.address == m.gatewayIP {
		next := connection{dstIP: ep.address, dstPort: ep.port, transport: conn.transport, sni: conn.sni, alpn: conn.alpn}
		if ts != nil {
			// The sidecar wraps the connection in its own TLS: the gateway sees that SNI and ALPN.
			next.transport, next.sni, next.alpn = "tls", ts.Sni, ts.GetCommonTlsContext().GetAlpnProtocols()
		}
		note("sidecar: cluster %s sends it to the egress gateway %s (%s)", name, ep.String(), next.describe())
		m.hop(m.gateway, next, v)
		return
	}
	v.Verdict, v.Exit, v.Upstream = "direct", proxy.role, ep.String()
	note("%s: cluster %s connects to %s", proxy.role, name, ep.String())
}

// describe names what the connection shows a filter chain match: its SNI, or that it is plain text.
func (c connection) describe() string {
	if c.transport == "tls" {
		return "SNI " + c.sni
	}
	return "plain text (no SNI)"
}

// listenerFor picks the listener Envoy hands the connection to: the sidecar's original-destination
// hand-off prefers IP:port, then 0.0.0.0:port, else the virtual outbound listener itself; a gateway
// listens on 0.0.0.0:port.
func (p *proxyConfig) listenerFor(conn connection) *listenerv3.Listener {
	var wildcard, virtual *listenerv3.Listener
	for _, l := range p.listeners {
		sa := l.GetAddress().GetSocketAddress()
		if sa == nil {
			continue
		}
		if l.GetUseOriginalDst().GetValue() {
			virtual = l
			continue
		}
		if sa.GetPortValue() != conn.dstPort {
			continue
		}
		if sa.GetAddress() == conn.dstIP {
			return l
		}
		if (sa.GetAddress() == "0.0.0.0" || sa.GetAddress() == "::") && wildcard == nil {
			wildcard = l
		}
	}
	if wildcard != nil {
		return wildcard
	}
	if p.role == "sidecar" {
		return virtual
	}
	return nil
}

// matchFilterChain is Envoy's filter chain match, narrowed criterion by criterion in Envoy's order:
// destination port, destination IP, server name, transport protocol, application protocols.
func matchFilterChain(l *listenerv3.Listener, conn connection) *listenerv3.FilterChain {
	chains := l.FilterChains
	chains = narrow(chains, func(m *listenerv3.FilterChainMatch) (bool, int) {
		if m.GetDestinationPort() == nil {
			return true, 0
		}
		return m.GetDestinationPort().GetValue() == conn.dstPort, 1
	})
	chains = narrow(chains, func(m *listenerv3.FilterChainMatch) (bool, int) {
		if len(m.GetPrefixRanges()) == 0 {
			return true, 0
		}
		best := -1
		ip, err := netip.ParseAddr(conn.dstIP)
		if err != nil {
			return false, 0
		}
		for _, r := range m.GetPrefixRanges() {
			prefix, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", r.GetAddressPrefix(), r.GetPrefixLen().GetValue()))
			if err == nil && prefix.Contains(ip) && prefix.Bits() > best {
				best = prefix.Bits()
			}
		}
		return best >= 0, 1 + best
	})
	chains = narrow(chains, func(m *listenerv3.FilterChainMatch) (bool, int) {
		if len(m.GetServerNames()) == 0 {
			return true, 0
		}
		best := -1
		for _, name := range m.GetServerNames() {
			if name == conn.sni {
				best = 1 << 20
			} else if strings.HasPrefix(name, "*.") && strings.HasSuffix(conn.sni, name[1:]) && len(name) > best {
				best = len(name)
			}
		}
		return best >= 0, 1 + best
	})
	chains = narrow(chains, func(m *listenerv3.FilterChainMatch) (bool, int) {
		if m.GetTransportProtocol() == "" {
			return true, 0
		}
		return m.GetTransportProtocol() == conn.transport, 1
	})
	chains = narrow(chains, func(m *listenerv3.FilterChainMatch) (bool, int) {
		if len(m.GetApplicationProtocols()) == 0 {
			return true, 0
		}
		for _, want := range m.GetApplicationProtocols() {
			for _, have := range conn.alpn {
				if want == have {
					return true, 1
				}
			}
		}
		return false, 0
	})
	if len(chains) > 0 {
		return chains[0]
	}
	return l.DefaultFilterChain
}

// narrow keeps the chains that match one criterion, and of those only the most specific.
func narrow(chains []*listenerv3.FilterChain, crit func(*listenerv3.FilterChainMatch) (bool, int)) []*listenerv3.FilterChain {
	best := -1
	var out []*listenerv3.FilterChain
	for _, fc := range chains {
		ok, score := crit(fc.GetFilterChainMatch())
		if !ok {
			continue
		}
		if score > best {
			best, out = score, nil
		}
		if score == best {
			out = append(out, fc)
		}
	}
	return out
}

func tcpProxyOf(f *listenerv3.Filter) *tcpproxy.TcpProxy {
	tc := f.GetTypedConfig()
	if tc == nil {
		return nil
	}
	tp := &tcpproxy.TcpProxy{}
	if tc.MessageIs(tp) && tc.UnmarshalTo(tp) == nil {
		return tp
	}
	return nil
}

// tcpCluster is the cluster a tcp_proxy sends to: its cluster, or the heaviest of its weighted clusters.
func tcpCluster(tp *tcpproxy.TcpProxy) string {
	if name := tp.GetCluster(); name != "" {
		return name
	}
	var best *tcpproxy.TcpProxy_WeightedCluster_ClusterWeight
	for _, c := range tp.GetWeightedClusters().GetClusters() {
		if best == nil || c.GetWeight() > best.GetWeight() {
			best = c
		}
	}
	return best.GetName()
}

func (m *meshView) clusterEndpoints(c *clusterv3.Cluster) []endpoint {
	out := loadAssignmentEndpoints(c.GetLoadAssignment())
	if len(out) > 0 || c.GetType() != clusterv3.Cluster_EDS || m.eds == nil {
		return out
	}
	return m.eds(c)
}

// loadAssignmentEndpoints are the addresses of a cluster load assignment, with the tlsMode Istio labels
// them with for transport socket matches.
func loadAssignmentEndpoints(cla *endpointv3.ClusterLoadAssignment) []endpoint {
	var out []endpoint
	for _, les := range cla.GetEndpoints() {
		for _, lb := range les.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				continue
			}
			mode := lb.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"].GetFields()["tlsMode"].GetStringValue()
			out = append(out, endpoint{address: sa.GetAddress(), port: sa.GetPortValue(), tlsMode: mode})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// indexEndpoints answers EDS from istiod's endpoint index, as istiod would for the cluster's service.
func indexEndpoints(push *model.PushContext, index *model.EndpointIndex, proxies ...*model.Proxy) func(*clusterv3.Cluster) []endpoint {
	return func(c *clusterv3.Cluster) []endpoint {
		_, _, hostname, port := model.ParseSubsetKey(c.Name)
		var svc *model.Service
		for _, p := range proxies {
			if svc = push.ServiceForHostname(p, host.Name(hostname)); svc != nil {
				break
			}
		}
		if svc == nil {
			return nil
		}
		shards, ok := index.ShardsForService(string(svc.Hostname), svc.Attributes.Namespace)
		if !ok {
			return nil
		}
		svcPort, ok := svc.Ports.GetByPort(port)
		if !ok {
			return nil
		}
		shards.RLock()
		defer shards.RUnlock()
		var out []endpoint
		for _, eps := range shards.Shards {
			for _, e := range eps {
				if e.ServicePortName != svcPort.Name || len(e.Addresses) == 0 {
					continue
				}
				out = append(out, endpoint{address: e.Addresses[0], port: e.EndpointPort, tlsMode: e.TLSMode})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
		return out
	}
}

// transportSocket is the TLS the cluster speaks to ep (nil: plain TCP). With transport_socket_matches,
// the first match whose metadata the endpoint carries wins (Istio matches on tlsMode).
func transportSocket(c *clusterv3.Cluster, ep *endpoint) *tlsv3.UpstreamTlsContext {
	ts := c.GetTransportSocket()
	for _, match := range c.GetTransportSocketMatches() {
		if matchesEndpoint(match.GetMatch(), ep) {
			ts = match.GetTransportSocket()
			break
		}
	}
	if ts == nil || ts.GetTypedConfig() == nil {
		return nil
	}
	tls := &tlsv3.UpstreamTlsContext{}
	if ts.GetTypedConfig().MessageIs(tls) && ts.GetTypedConfig().UnmarshalTo(tls) == nil {
		return tls
	}
	return nil
}

func matchesEndpoint(match *structpb.Struct, ep *endpoint) bool {
	for key, want := range match.GetFields() {
		if key != "tlsMode" {
			return false
		}
		if ep == nil || ep.tlsMode != want.GetStringValue() {
			return false
		}
	}
	return true
}

func usesHTTP2(c *clusterv3.Cluster) bool {
	if c.GetHttp2ProtocolOptions() != nil {
		return true
	}
	raw := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if raw == nil {
		return false
	}
	opts := &httpv3.HttpProtocolOptions{}
	if raw.UnmarshalTo(opts) != nil {
		return false
	}
	return opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil ||
		opts.GetUseDownstreamProtocolConfig().GetHttp2ProtocolOptions() != nil
}

func clusterType(c *clusterv3.Cluster) string {
	if c.GetClusterType() != nil {
		return c.GetClusterType().GetName()
	}
	return c.GetType().String()
}

func socketAddress(a *corev3.Address) string {
	sa := a.GetSocketAddress()
	if sa == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
}

func chainName(fc *listenerv3.FilterChain) string {
	if fc.Name != "" {
		return fc.Name
	}
	return "(unnamed)"
}
