package main

import (
	"fmt"
	"sort"
	"strings"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
)

// Finding is one message of Istio's analyzers, as `istioctl analyze` prints it.
type Finding struct {
	Code     string `json:"code"`
	Level    string `json:"level"`
	Resource string `json:"resource,omitempty"`
	Message  string `json:"message"`
}

// Analyze runs Istio's analyzers (what `istioctl analyze --use-kube=false` runs) over the manifests,
// with the cluster the lab has around them: the demo profile's egress gateway, and the client's
// namespace with sidecar injection on. Info messages are left out.
func Analyze(req Request) ([]Finding, error) {
	sa := local.NewSourceAnalyzer(analyzers.AllCombined(), resource.Namespace(req.Client.Namespace), resource.Namespace("istio-system"), nil)
	if err := sa.AddDefaultResources(); err != nil {
		return nil, fmt.Errorf("istio analyzers: %v", err)
	}
	sources := []local.ReaderSource{
		{Name: "lab", Reader: strings.NewReader(labContext(req))},
		{Name: "manifests", Reader: strings.NewReader(req.Manifests)},
	}
	if err := sa.AddTestReaderKubeSource(sources); err != nil {
		return nil, fmt.Errorf("istio analyzers: reading manifests: %v", err)
	}
	cancel := make(chan struct{})
	defer close(cancel)
	result, err := sa.Analyze(cancel)
	if err != nil {
		return nil, fmt.Errorf("istio analyzers: %v", err)
	}
	out := []Finding{}
	for _, m := range result.Messages.FilterOutLowerThan(diag.Warning) {
		f := Finding{Code: m.Type.Code(), Level: m.Type.Level().String(), Message: m.String()}
		if m.Resource != nil {
			f.Resource = m.Resource.Metadata.FullName.String()
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Message < out[j].Message })
	return out, nil
}

// labContext is what the cluster holds besides the manifests: the namespaces, the egress gateway the
// demo profile installs (Deployment, pod and Service), and the client pod with its sidecar.
func labContext(req Request) string {
	labels := func(m map[string]string, indent string) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s%s: %q\n", indent, k, m[k])
		}
		return b.String()
	}
	gw, client := req.Gateway, req.Client
	var ports strings.Builder
	for _, p := range gw.Ports {
		fmt.Fprintf(&ports, "    - name: %s\n      port: %d\n      targetPort: %d\n", p.Name, p.Port, p.TargetPort)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Namespace
metadata:
  name: %[2]s
---
apiVersion: v1
kind: Service
metadata:
  name: %[3]s
  namespace: %[2]s
spec:
  selector:
%[4]s  ports:
%[5]s---
apiVersion: v1
kind: Pod
metadata:
  name: %[3]s-0
  namespace: %[2]s
  labels:
%[4]sspec:
  containers:
    - name: istio-proxy
      image: docker.io/istio/proxyv2
---
apiVersion: v1
kind: Pod
metadata:
  name: %[6]s
  namespace: %[1]s
  labels:
%[7]s  annotations:
    sidecar.istio.io/status: '{"containers":["istio-proxy"]}'
spec:
  containers:
    - name: %[6]s
      image: curlimages/curl
    - name: istio-proxy
      image: docker.io/istio/proxyv2
`, client.Namespace, gw.Namespace, gw.Service, labels(gw.Labels, "    "), ports.String(), client.Pod, labels(client.Labels, "    "))
}
