// Command istio-oracle answers, with Istio's and Envoy's own code and no cluster, what a mesh would do
// with a set of manifests.
//
//	istio-oracle mesh < request.json        istiod's config for the client's sidecar and the egress gateway,
//	                                        the objects Istio rejects, istiod's push status, what Envoy
//	                                        would NACK, and where each probed host's TLS goes
//	istio-oracle xds < request.json         the same walk over the config a running istiod sends, fetched
//	                                        over xDS as the client's sidecar and the egress gateway
//	istio-oracle envoy-validate FILE...     an Envoy bootstrap decoded strictly and validated field by field
//	istio-oracle version                    the Istio and go-control-plane modules it was built from
//
// Output is JSON on stdout. Exit codes: 0 answered (whatever the answer), 1 the answer is "invalid" for
// envoy-validate, 2 the request itself could not be read.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	istiolog "istio.io/istio/pkg/log"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	quietLogs()
	switch os.Args[1] {
	case "mesh":
		answer(Generate)
	case "xds":
		answer(LiveMesh)
	case "envoy-validate":
		if len(os.Args) < 3 {
			usage()
		}
		ok := true
		var reports []EnvoyReport
		for _, file := range os.Args[2:] {
			r := ValidateEnvoyFile(file)
			ok = ok && len(r.Errors) == 0
			reports = append(reports, r)
		}
		emit(reports)
		if !ok {
			os.Exit(1)
		}
	case "version":
		emit(Versions())
	default:
		usage()
	}
}

// answer reads a JSON request from stdin, runs it and prints the JSON response.
func answer[Req, Res any](run func(Req) (Res, error)) {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var req Req
	if err := json.Unmarshal(in, &req); err != nil {
		fail(fmt.Errorf("request: %v", err))
	}
	res, err := run(req)
	if err != nil {
		fail(err)
	}
	emit(res)
}

// Versions names the modules whose code gives the answers.
func Versions() map[string]string {
	out := map[string]string{}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, dep := range info.Deps {
		switch dep.Path {
		case "istio.io/istio", "istio.io/api", "github.com/envoyproxy/go-control-plane/envoy":
			out[dep.Path] = dep.Version
		}
	}
	return out
}

// quietLogs sends istiod's own logging to stderr (stdout carries the answer), warnings and worse only
// unless ISTIO_ORACLE_LOG names another level (debug, info, warn, error, none).
func quietLogs() {
	opts := istiolog.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.ErrorOutputPaths = []string{"stderr"}
	level := istiolog.WarnLevel
	if name := os.Getenv("ISTIO_ORACLE_LOG"); name != "" {
		level = istiolog.StringToLevel(name)
	}
	opts.SetDefaultOutputLevel(istiolog.OverrideScopeName, level)
	if err := istiolog.Configure(opts); err != nil {
		fail(err)
	}
}

func emit(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fail(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: istio-oracle mesh < request.json | xds < request.json | envoy-validate FILE... | version")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "istio-oracle: %v\n", err)
	os.Exit(2)
}
