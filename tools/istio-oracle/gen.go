package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/core"
	kubereg "istio.io/istio/pilot/pkg/serviceregistry/kube"
	"istio.io/istio/pilot/pkg/serviceregistry/provider"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
)

// Request is what the lab knows: the objects applied, in order, and how Istio is installed.
type Request struct {
	// Manifests is a YAML stream of every object applied to the cluster, oldest first.
	Manifests string `json:"manifests"`
	// OutboundTrafficPolicy is meshConfig.outboundTrafficPolicy.mode: REGISTRY_ONLY or ALLOW_ANY.
	OutboundTrafficPolicy string      `json:"outboundTrafficPolicy"`
	Gateway               GatewaySpec `json:"gateway"`
	Client                ClientSpec  `json:"client"`
	// Probes are the TLS connections to follow (curl https://HOST:PORT from the client pod).
	Probes []Probe `json:"probes"`
}

// GatewaySpec describes the egress gateway as the demo profile installs it.
type GatewaySpec struct {
	Namespace string            `json:"namespace"`
	Service   string            `json:"service"`
	Labels    map[string]string `json:"labels"`
	Ports     []GatewayPort     `json:"ports"`
}

type GatewayPort struct {
	Name       string `json:"name"`
	Port       int32  `json:"port"`
	TargetPort int32  `json:"targetPort"`
}

// ClientSpec is the pod the probes run in (with a sidecar).
type ClientSpec struct {
	Pod       string            `json:"pod"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

type Probe struct {
	Host string `json:"host"`
	Port uint32 `json:"port"`
	// Plain is `curl http://HOST:PORT` (plain text, no SNI) instead of `curl https://HOST:PORT`.
	Plain bool `json:"plain,omitempty"`
}

// defaultPort is curl's port for the probe's scheme.
func (p Probe) defaultPort() uint32 {
	if p.Plain {
		return 80
	}
	return 443
}

// Response is the oracle's answer.
type Response struct {
	Versions map[string]string `json:"versions"`
	// Objects lists every input object: accepted by Istio's validation or not, and why.
	Objects []ObjectReport `json:"objects"`
	// PushStatus is what istiod's /debug/push_status shows: metric -> key -> {proxy, message}.
	PushStatus map[string]map[string]model.ProxyPushStatus `json:"pushStatus"`
	// Analysis is what Istio's analyzers (istioctl analyze) report, warnings and errors.
	Analysis []Finding               `json:"analysis"`
	Proxies  map[string]*ProxyReport `json:"proxies"`
	Verdicts []Verdict               `json:"verdicts"`
}

type ObjectReport struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace,omitempty"`
	Name      string   `json:"name"`
	Accepted  bool     `json:"accepted"`
	Errors    []string `json:"errors,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Addresses the oracle gives the lab's workloads; only their roles matter to the walk.
const (
	clientIP       = "10.244.0.10"
	gatewayPodIP   = "10.244.0.100"
	gatewayVIP     = "10.96.0.100"
	serviceVIPBase = "10.96.1."
	// publicIP stands for any address outside the cluster that a public name resolves to.
	publicIP = "203.0.113.7"
)

type failer struct{ err error }

func (f *failer) Fail()                     { f.FailNow() }
func (f *failer) FailNow()                  { panic(f) }
func (f *failer) Fatal(args ...any)         { f.err = fmt.Errorf("%s", fmt.Sprint(args...)); panic(f) }
func (f *failer) Fatalf(s string, a ...any) { f.err = fmt.Errorf(s, a...); panic(f) }
func (f *failer) Log(...any)                {}
func (f *failer) Logf(string, ...any)       {}
func (f *failer) TempDir() string           { return "" }
func (f *failer) Helper()                   {}
func (f *failer) Cleanup(func())            {}
func (f *failer) Skip(...any)               { f.FailNow() }

// Generate runs istiod's config generator over the request and walks the result.
func Generate(req Request) (res *Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(*failer); ok && f.err != nil {
				err = fmt.Errorf("istiod's config generator: %v", f.err)
				return
			}
			err = fmt.Errorf("istiod's config generator panicked: %v\n%s", r, debug.Stack())
		}
	}()
	defaults(&req)
	in, err := parseManifests(req)
	if err != nil {
		return nil, err
	}
	gw := gatewayService(req.Gateway)
	services := append([]*model.Service{gw.service}, in.services...)
	instances := append(gw.instances, in.instances...)

	m := mesh.DefaultMeshConfig()
	mode := meshconfig.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY
	if req.OutboundTrafficPolicy == "ALLOW_ANY" {
		mode = meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY
	}
	m.OutboundTrafficPolicy = &meshconfig.MeshConfig_OutboundTrafficPolicy{Mode: mode}

	cg := core.NewConfigGenTest(&failer{}, core.TestOptions{
		Configs:    in.configs,
		Services:   services,
		Instances:  instances,
		MeshConfig: m,
	})
	sidecar := cg.SetupProxy(proxyOf(model.SidecarProxy, req.Client.Pod, req.Client.Namespace, req.Client.Labels, clientIP))
	gateway := cg.SetupProxy(proxyOf(model.Router, req.Gateway.Service, req.Gateway.Namespace, req.Gateway.Labels, gatewayPodIP))

	mesh := &meshView{
		outboundPolicy: req.OutboundTrafficPolicy,
		vips:           in.vips,
		sidecar:        newProxyConfig("sidecar", cg.Listeners(sidecar), cg.Clusters(sidecar)),
		gateway:        newProxyConfig("gateway", cg.Listeners(gateway), cg.Clusters(gateway)),
		sidecarID:      sidecar.ID,
		gatewayID:      gateway.ID,
		gatewayIP:      gatewayPodIP,
		eds:            indexEndpoints(cg.PushContext(), cg.Env().EndpointIndex, sidecar, gateway),
	}

	status := map[string]map[string]model.ProxyPushStatus{}
	raw, _ := cg.PushContext().StatusJSON()
	_ = json.Unmarshal(raw, &status)

	analysis, err := Analyze(req)
	if err != nil {
		return nil, err
	}
	res = &Response{
		Versions:   Versions(),
		Analysis:   analysis,
		Objects:    in.reports,
		PushStatus: status,
		Proxies: map[string]*ProxyReport{
			"sidecar": mesh.sidecar.report(mesh),
			"gateway": mesh.gateway.report(mesh),
		},
		Verdicts: []Verdict{},
	}
	for _, p := range req.Probes {
		res.Verdicts = append(res.Verdicts, mesh.walk(p))
	}
	return res, nil
}

// proxyOf is a proxy as it connects to istiod: its type, `name.namespace` id, labels and address.
func proxyOf(kind model.NodeType, name, namespace string, labels map[string]string, ip string) *model.Proxy {
	return &model.Proxy{
		Type:            kind,
		ID:              name + "." + namespace,
		ConfigNamespace: namespace,
		Labels:          labels,
		IPAddresses:     []string{ip},
		Metadata: &model.NodeMetadata{
			Namespace: namespace,
			Labels:    labels,
			ClusterID: cluster.ID(provider.Mock),
		},
	}
}

func defaults(req *Request) {
	if req.OutboundTrafficPolicy == "" {
		req.OutboundTrafficPolicy = "ALLOW_ANY"
	}
	if req.Client.Namespace == "" {
		req.Client.Namespace = "default"
	}
	if req.Client.Pod == "" {
		req.Client.Pod = "curl"
	}
	if req.Client.Labels == nil {
		req.Client.Labels = map[string]string{"app": req.Client.Pod}
	}
	if req.Gateway.Namespace == "" {
		req.Gateway.Namespace = "istio-system"
	}
	if req.Gateway.Service == "" {
		req.Gateway.Service = "istio-egressgateway"
	}
	if req.Gateway.Labels == nil {
		req.Gateway.Labels = map[string]string{"app": "istio-egressgateway", "istio": "egressgateway"}
	}
	if len(req.Gateway.Ports) == 0 {
		req.Gateway.Ports = []GatewayPort{{Name: "http2", Port: 80, TargetPort: 8080}, {Name: "https", Port: 443, TargetPort: 8443}}
	}
	for i := range req.Probes {
		if req.Probes[i].Port == 0 {
			req.Probes[i].Port = req.Probes[i].defaultPort()
		}
	}
}

type parsed struct {
	configs   []config.Config
	services  []*model.Service
	instances []*model.ServiceInstance
	reports   []ObjectReport
	// vips maps a cluster Service's host names (FQDN, name.ns, and name for its namespace) to its ClusterIP.
	vips map[string]string
}

// parseManifests reads the YAML stream the way the API server and Istio's validation would: Istio
// objects that fail Istio's validation are rejected (as the validating webhook does) and do not reach
// the config generator; Kubernetes Services and EndpointSlices feed the service registry.
func parseManifests(req Request) (*parsed, error) {
	out := &parsed{vips: map[string]string{}, reports: []ObjectReport{}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dec := kubeyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(req.Manifests)), 512*1024)
	type svcEntry struct {
		svc  *model.Service
		kube corev1.Service
	}
	var kubeServices []svcEntry
	var slices []discoveryv1.EndpointSlice
	for i := 0; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("manifests: document %d: %v", i+1, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		var obj crd.IstioKind
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("manifests: document %d: %v", i+1, err)
		}
		if obj.Namespace == "" {
			obj.Namespace = "default"
		}
		obj.CreationTimestamp.Time = t0.Add(time.Duration(i) * time.Second)
		report := ObjectReport{Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, Accepted: true}
		gvk := obj.GroupVersionKind()
		if err := strictDecode(raw, obj); err != nil {
			// The API server refuses the object (kubectl apply validates strictly): it never reaches istiod.
			report.Accepted, report.Errors = false, []string{err.Error()}
			out.reports = append(out.reports, report)
			continue
		}
		switch {
		case gvk.Group == "" && obj.Kind == "Service":
			var svc corev1.Service
			if err := json.Unmarshal(raw, &svc); err != nil {
				report.Accepted, report.Errors = false, []string{err.Error()}
				break
			}
			svc.Namespace = obj.Namespace
			svc.CreationTimestamp = obj.CreationTimestamp
			if svc.Spec.ClusterIP == "" {
				svc.Spec.ClusterIP = fmt.Sprintf("%s%d", serviceVIPBase, len(kubeServices)+1)
			}
			converted := kubereg.ConvertService(svc, nil, "cluster.local", cluster.ID(provider.Mock), "cluster.local")
			kubeServices = append(kubeServices, svcEntry{converted, svc})
			out.services = append(out.services, converted)
			for _, name := range []string{string(converted.Hostname), svc.Name + "." + svc.Namespace, svc.Name + "." + svc.Namespace + ".svc"} {
				out.vips[name] = svc.Spec.ClusterIP
			}
			if svc.Namespace == req.Client.Namespace {
				out.vips[svc.Name] = svc.Spec.ClusterIP
			}
		case gvk.Group == "discovery.k8s.io" && obj.Kind == "EndpointSlice":
			var slice discoveryv1.EndpointSlice
			if err := json.Unmarshal(raw, &slice); err != nil {
				report.Accepted, report.Errors = false, []string{err.Error()}
				break
			}
			slice.Namespace = obj.Namespace
			slices = append(slices, slice)
		default:
			s, ok := collections.PilotGatewayAPI().FindByGroupVersionAliasesKind(resource.FromKubernetesGVK(&gvk))
			if !ok {
				// Deployments, ConfigMaps and the like: checked by strictDecode only.
				break
			}
			cfg, err := crd.ConvertObject(s, &obj, "")
			if err != nil {
				report.Accepted, report.Errors = false, []string{err.Error()}
				break
			}
			warnings, err := s.ValidateConfig(*cfg)
			if warnings != nil {
				report.Warnings = splitErrors(warnings)
			}
			if err != nil {
				report.Accepted, report.Errors = false, splitErrors(err)
				break
			}
			out.configs = append(out.configs, *cfg)
		}
		out.reports = append(out.reports, report)
	}
	for _, slice := range slices {
		name := slice.Labels["kubernetes.io/service-name"]
		for _, entry := range kubeServices {
			if entry.kube.Name != name || entry.kube.Namespace != slice.Namespace {
				continue
			}
			for _, port := range entry.svc.Ports {
				var target int32
				for _, sp := range slice.Ports {
					if sp.Name != nil && *sp.Name == port.Name && sp.Port != nil {
						target = *sp.Port
					}
				}
				if target == 0 {
					continue
				}
				for _, ep := range slice.Endpoints {
					out.instances = append(out.instances, &model.ServiceInstance{
						Service:     entry.svc,
						ServicePort: port,
						Endpoint: &model.IstioEndpoint{
							Addresses:       ep.Addresses,
							EndpointPort:    uint32(target),
							ServicePortName: port.Name,
							Namespace:       slice.Namespace,
							TLSMode:         model.DisabledTLSModeLabel,
						},
					})
				}
			}
		}
	}
	return out, nil
}

type gatewayRegistration struct {
	service   *model.Service
	instances []*model.ServiceInstance
}

// gatewayService is the demo profile's istio-egressgateway Service and its one pod. The pod carries no
// security.istio.io/tlsMode label (the gateway charts do not inject it), so sidecars talk to it in
// plain TCP unless a DestinationRule asks for ISTIO_MUTUAL.
func gatewayService(spec GatewaySpec) gatewayRegistration {
	svc := corev1.Service{}
	svc.Name, svc.Namespace = spec.Service, spec.Namespace
	svc.Labels = spec.Labels
	svc.Spec.ClusterIP = gatewayVIP
	svc.Spec.Selector = spec.Labels
	for _, p := range spec.Ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: p.Name, Port: p.Port, Protocol: corev1.ProtocolTCP})
	}
	converted := kubereg.ConvertService(svc, nil, "cluster.local", cluster.ID(provider.Mock), "cluster.local")
	reg := gatewayRegistration{service: converted}
	for i, port := range converted.Ports {
		reg.instances = append(reg.instances, &model.ServiceInstance{
			Service:     converted,
			ServicePort: port,
			Endpoint: &model.IstioEndpoint{
				Addresses:       []string{gatewayPodIP},
				EndpointPort:    uint32(spec.Ports[i].TargetPort),
				ServicePortName: port.Name,
				Namespace:       spec.Namespace,
				Labels:          spec.Labels,
				TLSMode:         model.DisabledTLSModeLabel,
			},
		})
	}
	return reg
}

func splitErrors(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" || strings.HasSuffix(line, "errors occurred:") || strings.HasSuffix(line, "error occurred:") {
			continue
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

var kubeDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// strictDecode reads an object the way the API server does under kubectl's default --validate=strict:
// Kubernetes kinds into their Go types, Istio kinds' spec into their protobuf messages, an unknown or
// duplicate field being an error either way.
func strictDecode(raw []byte, obj crd.IstioKind) error {
	gvk := obj.GroupVersionKind()
	if s, ok := collections.PilotGatewayAPI().FindByGroupVersionAliasesKind(resource.FromKubernetesGVK(&gvk)); ok {
		instance, err := s.NewInstance()
		if err != nil {
			return err
		}
		msg, ok := instance.(proto.Message)
		if !ok || obj.Spec == nil {
			return nil
		}
		spec, err := json.Marshal(obj.Spec)
		if err != nil {
			return err
		}
		if err := (protojson.UnmarshalOptions{}).Unmarshal(spec, msg); err != nil {
			return fmt.Errorf("spec: %s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "proto:"), " "))
		}
		return nil
	}
	if _, _, err := kubeDecoder.Decode(raw, nil, nil); err != nil {
		return err
	}
	return nil
}

// yamlToJSON is used by the Envoy validator as well.
func yamlToJSON(in []byte) ([]byte, error) { return yaml.YAMLToJSON(in) }
