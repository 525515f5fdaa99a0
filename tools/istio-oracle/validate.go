package main

import (
	"fmt"
	"os"
	"sort"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"

	// The extensions a typed_config may name; registering them lets Any fields be decoded and checked.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/common/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/network/dns_resolver/cares/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// EnvoyReport is the verdict on one Envoy config file.
type EnvoyReport struct {
	File     string   `json:"file"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

// ValidateEnvoyFile decodes a YAML or JSON bootstrap strictly (an unknown field is an error, as in
// `envoy --mode validate`) and runs Envoy's field rules (protoc-gen-validate) over every message,
// typed_config contents included. Deprecated fields are warnings.
func ValidateEnvoyFile(file string) EnvoyReport {
	r := EnvoyReport{File: file, Errors: []string{}, Warnings: []string{}}
	raw, err := os.ReadFile(file)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	js, err := yamlToJSON(raw)
	if err != nil {
		r.Errors = append(r.Errors, "YAML: "+err.Error())
		return r
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, b); err != nil {
		r.Errors = append(r.Errors, "Bootstrap: "+err.Error())
		return r
	}
	r.Errors = append(r.Errors, validateProto(b)...)
	r.Warnings = append(r.Warnings, deprecatedFields(b.ProtoReflect(), "")...)
	return r
}

type validator interface{ ValidateAll() error }

// validateProto runs ValidateAll on m and on the message inside every Any below it, which ValidateAll
// itself does not open.
func validateProto(m proto.Message) []string {
	var out []string
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			out = append(out, err.Error())
		}
	}
	eachAny(m.ProtoReflect(), "", func(path string, a *anypb.Any) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %s: %v", path, a.GetTypeUrl(), err))
			return
		}
		if v, ok := inner.(validator); ok {
			if err := v.ValidateAll(); err != nil {
				out = append(out, fmt.Sprintf("%s (%s): %v", path, a.GetTypeUrl(), err))
			}
		}
	})
	sort.Strings(out)
	return out
}

// eachAny calls fn for every Any reachable from m, the decoded contents of Anys included.
func eachAny(m protoreflect.Message, path string, fn func(string, *anypb.Any)) {
	walkFields(m, path, func(string, protoreflect.FieldDescriptor) {}, fn)
}

// deprecatedFields lists the set fields that Envoy's API marks deprecated, inside Anys too.
func deprecatedFields(m protoreflect.Message, path string) []string {
	var out []string
	walkFields(m, path, func(p string, fd protoreflect.FieldDescriptor) {
		if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDeprecated() {
			out = append(out, fmt.Sprintf("%s: deprecated field (%s)", p, fd.FullName()))
		}
	}, func(string, *anypb.Any) {})
	return out
}

// walkFields calls onField for every set field below m (by its path) and onAny for every Any, then goes on
// into the Any's decoded contents.
func walkFields(m protoreflect.Message, path string, onField func(string, protoreflect.FieldDescriptor), onAny func(string, *anypb.Any)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		onField(p, fd)
		visit := func(p string, msg protoreflect.Message) {
			if a, ok := msg.Interface().(*anypb.Any); ok {
				onAny(p, a)
				if inner, err := a.UnmarshalNew(); err == nil {
					walkFields(inner.ProtoReflect(), p, onField, onAny)
				}
				return
			}
			walkFields(msg, p, onField, onAny)
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				visit(fmt.Sprintf("%s[%d]", p, i), list.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(fmt.Sprintf("%s[%s]", p, k.String()), mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			visit(p, v.Message())
		}
		return true
	})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
