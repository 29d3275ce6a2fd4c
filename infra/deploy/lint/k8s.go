package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const gpuResource corev1.ResourceName = "nvidia.com/gpu"

// object is one decoded manifest document.
type object struct {
	file       string
	index      int
	apiVersion string
	kind       string
	name       string
	namespace  string
	raw        []byte // JSON
	value      any    // the typed struct
	broken     bool   // it did not decode completely
}

func (o *object) where() string {
	return fmt.Sprintf("%s#%d %s/%s", filepath.Base(o.file), o.index, o.kind, o.name)
}

type kustomization struct {
	APIVersion        string            `json:"apiVersion"`
	Kind              string            `json:"kind"`
	Namespace         string            `json:"namespace,omitempty"`
	Resources         []string          `json:"resources"`
	CommonAnnotations map[string]string `json:"commonAnnotations,omitempty"`
	Images            []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// newTyped returns the typed struct a kind decodes into, nil for kinds this lint does not know.
func newTyped(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "keda.sh/v1alpha1 ScaledObject":
		return &scaledObject{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return &kustomization{}
	}
	return nil
}

func readDocuments(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || t[0] == '#' || bytes.Equal(t, []byte("---")) {
			continue
		}
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func lintK8s(dir, kedaCRD string, p *problems) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	files = append(files, more...)
	sort.Strings(files)
	if len(files) == 0 {
		p.add(dir, "no manifests (*.yaml)")
		return
	}
	keda, err := loadScaledObjectSchema(kedaCRD)
	if err != nil {
		p.add(kedaCRD, "%v", err)
	}
	var objs []*object
	var kust *object
	for _, f := range files {
		docs, err := readDocuments(f)
		if err != nil {
			p.add(f, "%v", err)
			continue
		}
		for i, doc := range docs {
			o := decodeObject(f, i, doc, keda, p)
			if o == nil {
				continue
			}
			if o.kind == "Kustomization" {
				kust = o
			} else {
				objs = append(objs, o)
			}
		}
	}
	crossCheck(dir, files, kust, objs, p)
}

func decodeObject(file string, index int, doc []byte, keda *scaledObjectSchema, p *problems) *object {
	at := fmt.Sprintf("document %d", index)
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		p.add(file, "%s: %v", at, err)
		return nil
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		p.add(file, "%s: %v", at, err)
		return nil
	}
	if head.APIVersion == "" || head.Kind == "" {
		p.add(file, "%s: apiVersion and kind are required", at)
		return nil
	}
	o := &object{file: file, index: index, apiVersion: head.APIVersion, kind: head.Kind, name: head.Metadata.Name, namespace: head.Metadata.Namespace, raw: js}
	v := newTyped(head.APIVersion, head.Kind)
	if v == nil {
		p.add(file, "%s: %s %s is not a kind this lint knows (add it to newTyped)", at, head.APIVersion, head.Kind)
		return nil
	}
	strict, err := sigsjson.UnmarshalStrict(js, v, sigsjson.DisallowUnknownFields)
	if err != nil {
		// A malformed value (bad quantity, wrong type): the object is incomplete, so it gets no further rules.
		p.add(file, "%s (%s %s): %v", at, head.Kind, head.Metadata.Name, err)
		o.broken = true
	}
	for _, e := range strict {
		p.add(file, "%s (%s %s): %v", at, head.Kind, head.Metadata.Name, e)
	}
	o.value = v
	if head.Kind == "Kustomization" {
		return o
	}
	if head.Metadata.Name == "" {
		p.add(file, "%s (%s): metadata.name is required", at, head.Kind)
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(head.Metadata.Name) {
			p.add(file, "%s: metadata.name %q: %s", o.where(), head.Metadata.Name, msg)
		}
	}
	if head.Kind == "ScaledObject" && keda != nil {
		for _, e := range keda.validate(js) {
			p.add(file, "%s: %s", o.where(), e)
		}
	}
	if m, ok := v.(interface{ GetLabels() map[string]string }); ok {
		for k, val := range m.GetLabels() {
			for _, msg := range validation.IsQualifiedName(k) {
				p.add(file, "%s: label key %q: %s", o.where(), k, msg)
			}
			for _, msg := range validation.IsValidLabelValue(val) {
				p.add(file, "%s: label %s=%q: %s", o.where(), k, val, msg)
			}
		}
	}
	return o
}

// ---------------------------------------------------------------------------------------------------------------
// Rules across objects.

type index struct {
	byKind  map[string]map[string]*object
	workers map[string]workerInfo // Deployment name -> what it runs
}

type workerInfo struct {
	kind string // "cpu" or "gpu"
	env  map[string]string
}

func (ix *index) get(kind, name string) *object {
	return ix.byKind[kind][name]
}

func crossCheck(dir string, files []string, kust *object, objs []*object, p *problems) {
	ix := &index{byKind: map[string]map[string]*object{}, workers: map[string]workerInfo{}}
	for _, o := range objs {
		if ix.byKind[o.kind] == nil {
			ix.byKind[o.kind] = map[string]*object{}
		}
		if prev := ix.byKind[o.kind][o.name]; prev != nil {
			p.add(o.file, "%s is defined twice (also in %s)", o.where(), filepath.Base(prev.file))
		}
		ix.byKind[o.kind][o.name] = o
	}

	// One namespace for everything namespaced, the one the Namespace object (and the kustomization) makes.
	ns := ""
	for name := range ix.byKind["Namespace"] {
		ns = name
	}
	if kust != nil {
		k := kust.value.(*kustomization)
		if k.Namespace != "" {
			if ns != "" && k.Namespace != ns {
				p.add(kust.file, "namespace %q differs from the Namespace object %q", k.Namespace, ns)
			}
			ns = k.Namespace
		}
		listed := map[string]bool{}
		for _, r := range k.Resources {
			listed[r] = true
			if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
				p.add(kust.file, "resource %s does not exist", r)
			}
		}
		for _, f := range files {
			b := filepath.Base(f)
			if b != filepath.Base(kust.file) && !listed[b] {
				p.add(kust.file, "%s is not listed in resources", b)
			}
		}
	}
	for _, o := range objs {
		if o.kind == "Namespace" {
			continue
		}
		if ns != "" && o.namespace != "" && o.namespace != ns {
			p.add(o.file, "%s: namespace %q, expected %q", o.where(), o.namespace, ns)
		}
	}

	for _, o := range objs {
		if o.kind == "Deployment" && !o.broken {
			lintDeployment(o, ix, p)
		}
	}
	for _, o := range objs {
		if o.kind == "ScaledObject" && !o.broken {
			lintScaledObject(o, ix, p)
		}
	}
	// Workers on different nodes share the artifacts claim: it must be ReadWriteMany.
	claims := map[string][]string{}
	for _, o := range objs {
		if d, ok := o.value.(*appsv1.Deployment); ok {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					claims[v.PersistentVolumeClaim.ClaimName] = append(claims[v.PersistentVolumeClaim.ClaimName], o.name)
				}
			}
		}
	}
	for claim, users := range claims {
		c := ix.get("PersistentVolumeClaim", claim)
		if c == nil {
			continue // reported per Deployment
		}
		pvc := c.value.(*corev1.PersistentVolumeClaim)
		rwx := false
		for _, m := range pvc.Spec.AccessModes {
			if m == corev1.ReadWriteMany {
				rwx = true
			}
		}
		if len(users) > 1 && !rwx {
			p.add(c.file, "%s is mounted by %s: it must be ReadWriteMany", c.where(), strings.Join(users, ", "))
		}
		if _, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			p.add(c.file, "%s: spec.resources.requests.storage is required", c.where())
		}
	}
}

// workerKind tells a CPU from a GPU worker by its entry point.
func workerKind(c corev1.Container) string {
	all := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
	switch {
	case strings.Contains(all, "workers/gpu.js"):
		return "gpu"
	case strings.Contains(all, "workers/cpu.js"):
		return "cpu"
	}
	return ""
}

// containerEnv is the container's environment as far as the manifests tell (ConfigMaps it imports, then env).
func containerEnv(o *object, c corev1.Container, ix *index, p *problems) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			cm := ix.get("ConfigMap", ef.ConfigMapRef.Name)
			if cm == nil {
				if ef.ConfigMapRef.Optional == nil || !*ef.ConfigMapRef.Optional {
					p.add(o.file, "%s: container %s: envFrom ConfigMap %q is not defined", o.where(), c.Name, ef.ConfigMapRef.Name)
				}
				continue
			}
			for k, v := range cm.value.(*corev1.ConfigMap).Data {
				env[ef.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := ix.get("ConfigMap", ref.Name)
			if cm == nil {
				p.add(o.file, "%s: env %s: ConfigMap %q is not defined", o.where(), e.Name, ref.Name)
				continue
			}
			v, ok := cm.value.(*corev1.ConfigMap).Data[ref.Key]
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				p.add(o.file, "%s: env %s: ConfigMap %s has no key %s", o.where(), e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
			continue
		}
		env[e.Name] = e.Value
	}
	return env
}

func lintDeployment(o *object, ix *index, p *problems) {
	d := o.value.(*appsv1.Deployment)
	spec := d.Spec.Template.Spec
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels)+len(d.Spec.Selector.MatchExpressions) == 0 {
		p.add(o.file, "%s: spec.selector is required", o.where())
	} else if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil {
		p.add(o.file, "%s: spec.selector: %v", o.where(), err)
	} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		p.add(o.file, "%s: spec.selector does not match the pod template's labels", o.where())
	}
	if len(spec.Containers) == 0 {
		p.add(o.file, "%s: no containers", o.where())
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.PersistentVolumeClaim != nil && ix.get("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) == nil {
			p.add(o.file, "%s: volume %s: PersistentVolumeClaim %q is not defined", o.where(), v.Name, v.PersistentVolumeClaim.ClaimName)
		}
		if v.ConfigMap != nil && ix.get("ConfigMap", v.ConfigMap.Name) == nil && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
			p.add(o.file, "%s: volume %s: ConfigMap %q is not defined", o.where(), v.Name, v.ConfigMap.Name)
		}
	}
	for _, c := range spec.Containers {
		if c.Name == "" {
			p.add(o.file, "%s: a container has no name", o.where())
		}
		if c.Image == "" {
			p.add(o.file, "%s: container %s: image is required", o.where(), c.Name)
		} else if tag := imageTag(c.Image); tag == "" || tag == "latest" {
			p.add(o.file, "%s: container %s: image %q: pin a tag other than latest", o.where(), c.Name, c.Image)
		}
		ports := map[string]bool{}
		for _, port := range c.Ports {
			if port.ContainerPort < 1 || port.ContainerPort > 65535 {
				p.add(o.file, "%s: container %s: containerPort %d out of range", o.where(), c.Name, port.ContainerPort)
			}
			if port.Name != "" {
				ports[port.Name] = true
			}
		}
		for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if probe != nil && probe.TCPSocket != nil && probe.TCPSocket.Port.StrVal != "" && !ports[probe.TCPSocket.Port.StrVal] {
				p.add(o.file, "%s: container %s: probe port %q is not a named port", o.where(), c.Name, probe.TCPSocket.Port.StrVal)
			}
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				p.add(o.file, "%s: container %s: volumeMount %s names no volume", o.where(), c.Name, m.Name)
			}
		}
		for name, q := range c.Resources.Limits {
			if r, ok := c.Resources.Requests[name]; ok && r.Cmp(q) > 0 {
				p.add(o.file, "%s: container %s: request %s=%s exceeds the limit %s", o.where(), c.Name, name, r.String(), q.String())
			}
		}
		env := containerEnv(o, c, ix, p)
		switch workerKind(c) {
		case "gpu":
			lintGpuContainer(o, d, c, env, p)
		case "cpu":
			if _, ok := c.Resources.Limits[gpuResource]; ok {
				p.add(o.file, "%s: the CPU worker should not take a GPU", o.where())
			}
		}
		if kind := workerKind(c); kind != "" {
			ix.workers[o.name] = workerInfo{kind: kind, env: env}
			for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} {
				if env[k] == "" {
					p.add(o.file, "%s: container %s: %s is not set", o.where(), c.Name, k)
				}
			}
			mounted := false
			for _, m := range c.VolumeMounts {
				if m.MountPath == "/app/artifacts" {
					mounted = true
				}
			}
			if !mounted {
				p.add(o.file, "%s: container %s: nothing mounted at /app/artifacts (the workers share artifacts as files)", o.where(), c.Name)
			}
		}
	}
}

func lintGpuContainer(o *object, d *appsv1.Deployment, c corev1.Container, env map[string]string, p *problems) {
	spec := d.Spec.Template.Spec
	limit, ok := c.Resources.Limits[gpuResource]
	if !ok || limit.Value() < 1 {
		p.add(o.file, "%s: container %s: the GPU worker needs resources.limits[nvidia.com/gpu] >= 1", o.where(), c.Name)
		return
	}
	if req, ok := c.Resources.Requests[gpuResource]; ok && req.Cmp(limit) != 0 {
		p.add(o.file, "%s: container %s: nvidia.com/gpu request %s differs from the limit %s (extended resources must be equal)", o.where(), c.Name, req.String(), limit.String())
	}
	gpus := int(limit.Value())
	slotsSpec, ok := env["DISTILLERY_GPU_SLOTS"]
	if !ok || slotsSpec == "" {
		p.add(o.file, "%s: container %s: DISTILLERY_GPU_SLOTS is not set (the worker would run one CPU slot)", o.where(), c.Name)
	} else if slots, err := parseSlots(slotsSpec); err != nil {
		p.add(o.file, "%s: container %s: %v", o.where(), c.Name, err)
	} else if slots == nil {
		p.add(o.file, "%s: container %s: DISTILLERY_GPU_SLOTS=cpu on a GPU worker", o.where(), c.Name)
	} else {
		count, needed := gpusUsed(slots)
		if needed > gpus {
			p.add(o.file, "%s: container %s: DISTILLERY_GPU_SLOTS=%s uses GPU index %d but the pod gets nvidia.com/gpu=%d (indices inside the pod start at 0)", o.where(), c.Name, slotsSpec, needed-1, gpus)
		} else if count != gpus {
			p.add(o.file, "%s: container %s: nvidia.com/gpu=%d but DISTILLERY_GPU_SLOTS=%s uses %d GPU(s): one slot per GPU", o.where(), c.Name, gpus, slotsSpec, count)
		}
	}
	if len(spec.NodeSelector) == 0 && (spec.Affinity == nil || spec.Affinity.NodeAffinity == nil) {
		p.add(o.file, "%s: the GPU worker needs a nodeSelector or node affinity for GPU nodes", o.where())
	}
	tolerated := false
	for _, t := range spec.Tolerations {
		if t.Key == string(gpuResource) || (t.Key == "" && t.Operator == corev1.TolerationOpExists) {
			tolerated = true
		}
	}
	if !tolerated {
		p.add(o.file, "%s: the GPU worker needs a toleration for the nvidia.com/gpu taint", o.where())
	}
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds <= 60 {
		p.add(o.file, "%s: terminationGracePeriodSeconds must exceed the worker's 60 s shutdown grace (trainer checkpoint on SIGTERM)", o.where())
	}
	if s := d.Spec.Strategy.RollingUpdate; d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType && (s == nil || s.MaxSurge == nil || (s.MaxSurge.String() != "0" && s.MaxSurge.String() != "0%")) {
		p.add(o.file, "%s: a rollout would ask for extra GPUs: use strategy Recreate or rollingUpdate.maxSurge: 0", o.where())
	}
}
