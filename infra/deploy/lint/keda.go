package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// scaledObject: metadata is decoded strictly into ObjectMeta; spec is checked against KEDA's CRD schema.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              json.RawMessage `json:"spec"`
	Status            json.RawMessage `json:"status,omitempty"`
}

// scaledObjectSpec is the part of the spec the cross-object rules read (loosely: the schema is strict).
type scaledObjectSpec struct {
	ScaleTargetRef struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
	} `json:"scaleTargetRef"`
	MinReplicaCount *int32 `json:"minReplicaCount"`
	MaxReplicaCount *int32 `json:"maxReplicaCount"`
	Triggers        []struct {
		Type              string            `json:"type"`
		Name              string            `json:"name"`
		Metadata          map[string]string `json:"metadata"`
		AuthenticationRef *struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"authenticationRef"`
	} `json:"triggers"`
}

type scaledObjectSchema struct {
	schema *jsonschema.Schema
	source string
	label  string // how its errors are prefixed
}

// loadScaledObjectSchema turns the v1alpha1 openAPIV3Schema of KEDA's ScaledObject CRD into a JSON schema that,
// like `kubectl apply --validate=strict`, rejects fields the CRD does not declare.
func loadScaledObjectSchema(crdFile string) (*scaledObjectSchema, error) {
	return loadCRDSchema(crdFile, "ScaledObject", "v1alpha1", "KEDA")
}

// loadCRDSchema compiles one version of a CRD's openAPIV3Schema, strictly (see structural).
func loadCRDSchema(crdFile, kind, version, owner string) (*scaledObjectSchema, error) {
	data, err := os.ReadFile(crdFile)
	if err != nil {
		return nil, fmt.Errorf("%s CRD: %w", owner, err)
	}
	var crd struct {
		Spec struct {
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, fmt.Errorf("%s CRD: %w", owner, err)
	}
	if crd.Spec.Names.Kind != kind {
		return nil, fmt.Errorf("%s CRD: %s is not the %s CRD (kind %q)", owner, crdFile, kind, crd.Spec.Names.Kind)
	}
	var root map[string]any
	for _, v := range crd.Spec.Versions {
		if v.Name == version {
			root = v.Schema.OpenAPIV3Schema
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%s CRD: no %s schema in %s", owner, version, crdFile)
	}
	doc := structural(root)
	// Round-trip through JSON so numbers are what the compiler expects.
	raw, _ := json.Marshal(doc)
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	url := fmt.Sprintf("file:///%s.%s.json", strings.ToLower(kind), version)
	if err := c.AddResource(url, parsed); err != nil {
		return nil, err
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s CRD schema: %w", owner, err)
	}
	return &scaledObjectSchema{schema: sch, source: crdFile, label: owner + " " + kind}, nil
}

// structural maps an OpenAPI v3 structural schema onto JSON schema draft 4: objects with declared properties
// admit no others (unless x-kubernetes-preserve-unknown-fields), nullable admits null, x- extensions go.
func structural(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range t {
			if strings.HasPrefix(k, "x-kubernetes-") || k == "nullable" {
				continue
			}
			out[k] = structural(val)
		}
		if _, has := t["properties"]; has {
			if _, set := t["additionalProperties"]; !set && t["x-kubernetes-preserve-unknown-fields"] != true {
				out["additionalProperties"] = false
			}
		}
		if t["nullable"] == true {
			if typ, ok := out["type"].(string); ok {
				out["type"] = []any{typ, "null"}
			}
		}
		if t["x-kubernetes-int-or-string"] == true {
			delete(out, "type")
			if _, ok := out["anyOf"]; !ok {
				out["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = structural(x)
		}
		return out
	}
	return v
}

func (s *scaledObjectSchema) validate(js []byte) []string {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return []string{err.Error()}
	}
	// metadata is the apiserver's (checked strictly as ObjectMeta); the CRD only says "object".
	if m, ok := inst.(map[string]any); ok {
		m["metadata"] = map[string]any{}
	}
	if err := s.schema.Validate(inst); err != nil {
		var out []string
		if ve, ok := err.(*jsonschema.ValidationError); ok {
			for _, line := range strings.Split(strings.TrimSpace(fmt.Sprintf("%v", ve)), "\n") {
				line = strings.TrimSpace(line)
				if line != "" && !strings.HasPrefix(line, "jsonschema validation failed") {
					out = append(out, s.label+" schema: "+strings.TrimPrefix(line, "- "))
				}
			}
		}
		if len(out) == 0 {
			out = append(out, s.label+" schema: "+err.Error())
		}
		return out
	}
	return nil
}

// The temporal scaler's trigger metadata, as KEDA v2.21 reads it (pkg/scalers/temporal_scaler.go).
var temporalKeys = map[string]string{
	"endpoint": "string", "namespace": "string", "taskQueue": "string", "queueTypes": "queueTypes",
	"activationTargetQueueSize": "int", "targetQueueSize": "int", "minConnectTimeout": "int",
	"workerDeploymentName": "string", "workerDeploymentBuildId": "string",
	"includeRunningWorkflowCount": "bool", "workflowTaskQueueForCount": "string",
	"enableTLS": "bool", "unsafeSsl": "bool", "tlsServerName": "string",
}

// Keys whose value may instead come from the target container's environment (<key>FromEnv).
var temporalFromEnv = map[string]bool{
	"endpoint": true, "namespace": true, "taskQueue": true, "workerDeploymentName": true,
	"workerDeploymentBuildId": true, "workflowTaskQueueForCount": true,
}

var temporalRemoved = map[string]string{
	"buildId":           "removed in KEDA 2.21: use workerDeploymentName and workerDeploymentBuildId",
	"selectAllActive":   "removed in KEDA 2.21 (Temporal dropped the rules-based versioning APIs)",
	"selectUnversioned": "removed in KEDA 2.21 (Temporal dropped the rules-based versioning APIs)",
	"queueName":         "the pre-2.17 name: the key is taskQueue",
	"apiKey":            "a secret: give it through a TriggerAuthentication (authenticationRef), not in metadata",
	"cert":              "a secret: give it through a TriggerAuthentication",
	"key":               "a secret: give it through a TriggerAuthentication",
	"keyPassword":       "a secret: give it through a TriggerAuthentication",
	"ca":                "give it through a TriggerAuthentication",
}

// Task queue and deployment names KEDA puts into a visibility query when includeRunningWorkflowCount is on.
var visibilityLiteral = regexp.MustCompile(`^[a-zA-Z0-9\-_./:]+$`)

// lintTemporalTrigger checks one temporal trigger's metadata the way KEDA v2.21 parses it and returns the values the
// scaler would use. A <key>FromEnv names a variable of the target's container, looked up in env (nil: unknown).
func lintTemporalTrigger(where string, md, env map[string]string, add func(string, ...any)) map[string]string {
	vals := map[string]string{}
	set := map[string]bool{}
	for k, v := range md {
		if base, ok := strings.CutSuffix(k, "FromEnv"); ok && temporalFromEnv[base] {
			set[base] = true
			if env == nil {
				continue
			}
			if env[v] == "" {
				add("%s: metadata.%s: %s is not set in the target container's environment", where, k, v)
			} else if _, direct := md[base]; !direct {
				vals[base] = env[v]
			}
			continue
		}
		if why, ok := temporalRemoved[k]; ok {
			add("%s: metadata.%s: %s", where, k, why)
			continue
		}
		typ, ok := temporalKeys[k]
		if !ok {
			add("%s: metadata.%s: not a parameter of KEDA's temporal scaler", where, k)
			continue
		}
		switch typ {
		case "int":
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				add("%s: metadata.%s=%q: must be a non-negative integer", where, k, v)
			}
		case "bool":
			if _, err := strconv.ParseBool(v); err != nil {
				add("%s: metadata.%s=%q: must be true or false", where, k, v)
			}
		case "queueTypes":
			for _, q := range strings.Split(v, ",") {
				switch strings.TrimSpace(q) {
				case "workflow", "activity", "nexus":
				default:
					add("%s: metadata.queueTypes: %q is not workflow, activity or nexus", where, q)
				}
			}
		}
		set[k] = v != ""
		vals[k] = v
	}
	for _, k := range []string{"endpoint", "taskQueue"} {
		if !set[k] {
			add("%s: metadata.%s (or %sFromEnv) is required", where, k, k)
		}
	}
	if set["workerDeploymentName"] != set["workerDeploymentBuildId"] {
		add("%s: workerDeploymentName and workerDeploymentBuildId must both be set", where)
	}
	running, _ := strconv.ParseBool(vals["includeRunningWorkflowCount"])
	if set["workflowTaskQueueForCount"] && !running {
		add("%s: workflowTaskQueueForCount has no effect unless includeRunningWorkflowCount is true", where)
	}
	if running {
		for _, k := range []string{"taskQueue", "workflowTaskQueueForCount", "workerDeploymentName", "workerDeploymentBuildId"} {
			if v := vals[k]; v != "" && !visibilityLiteral.MatchString(v) {
				add("%s: %s %q has characters KEDA refuses in a visibility query (includeRunningWorkflowCount)", where, k, v)
			}
		}
	}
	return vals
}

func lintScaledObject(o *object, ix *index, p *problems) {
	so := o.value.(*scaledObject)
	var spec scaledObjectSpec
	if err := json.Unmarshal(so.Spec, &spec); err != nil {
		return // the schema reported it
	}
	add := func(format string, args ...any) { p.add(o.file, format, args...) }
	ref := spec.ScaleTargetRef
	kind := ref.Kind
	if kind == "" {
		kind = "Deployment"
	}
	if ix.get(kind, ref.Name) == nil {
		add("%s: scaleTargetRef %s/%s is not defined", o.where(), kind, ref.Name)
	}
	if spec.MinReplicaCount != nil && spec.MaxReplicaCount != nil && *spec.MinReplicaCount > *spec.MaxReplicaCount {
		add("%s: minReplicaCount %d > maxReplicaCount %d", o.where(), *spec.MinReplicaCount, *spec.MaxReplicaCount)
	}
	worker, isWorker := ix.workers[ref.Name]
	if isWorker && worker.kind == "cpu" && (spec.MinReplicaCount == nil || *spec.MinReplicaCount < 1) {
		add("%s: the CPU worker runs the workflows: minReplicaCount must be >= 1", o.where())
	}
	if len(spec.Triggers) == 0 {
		add("%s: no triggers", o.where())
	}
	for i, t := range spec.Triggers {
		where := fmt.Sprintf("%s: triggers[%d] (%s)", o.where(), i, t.Type)
		if t.Type != "temporal" {
			continue
		}
		vals := lintTemporalTrigger(where, t.Metadata, worker.env, add)
		if t.AuthenticationRef != nil && t.AuthenticationRef.Name == "" {
			add("%s: authenticationRef.name is required", where)
		}
		if !isWorker {
			continue
		}
		// The scaler must watch the cluster, namespace and queues its target polls.
		env := worker.env
		if ep := vals["endpoint"]; ep != "" && env["TEMPORAL_ADDRESS"] != "" && ep != env["TEMPORAL_ADDRESS"] {
			add("%s: endpoint %s is not the workers' TEMPORAL_ADDRESS %s", where, ep, env["TEMPORAL_ADDRESS"])
		}
		ns := vals["namespace"]
		if ns == "" && t.Metadata["namespaceFromEnv"] == "" {
			ns = "default" // the scaler's default
		}
		if ns != "" && ns != envOr(env, "TEMPORAL_NAMESPACE", "default") {
			add("%s: namespace %s is not the workers' TEMPORAL_NAMESPACE %s", where, ns, envOr(env, "TEMPORAL_NAMESPACE", "default"))
		}
		wfQueue := envOr(env, "DISTILLERY_WORKFLOW_QUEUE", "distillery")
		polled := []string{envOr(env, "DISTILLERY_GPU_QUEUE", "distillery-gpu")}
		if worker.kind == "cpu" {
			polled = []string{wfQueue, envOr(env, "DISTILLERY_CPU_QUEUE", "distillery-cpu")}
		}
		if q := vals["taskQueue"]; q != "" && !contains(polled, q) {
			add("%s: taskQueue %q is not a queue %s polls (%s)", where, q, ref.Name, strings.Join(polled, ", "))
		}
		if q := vals["workflowTaskQueueForCount"]; q != "" && q != wfQueue {
			add("%s: workflowTaskQueueForCount %q is not the workflow queue %q", where, q, wfQueue)
		}
	}
}

func envOr(env map[string]string, key, def string) string {
	if v := env[key]; v != "" {
		return v
	}
	return def
}
