package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// trainJob is what the rules below read from a Kubeflow Trainer TrainJob (the CRD schema checks all of it).
type trainJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Suspend    *bool `json:"suspend"`
		RuntimeRef struct {
			Name string `json:"name"`
		} `json:"runtimeRef"`
		Trainer *struct {
			Image            string                       `json:"image"`
			Command          []string                     `json:"command"`
			Args             []string                     `json:"args"`
			NumNodes         *int32                       `json:"numNodes"`
			NumProcPerNode   any                          `json:"numProcPerNode"`
			ResourcesPerNode *corev1.ResourceRequirements `json:"resourcesPerNode"`
			Env              []corev1.EnvVar              `json:"env"`
		} `json:"trainer"`
		PodSpecOverrides []struct {
			TargetJobs []struct {
				Name string `json:"name"`
			} `json:"targetJobs"`
			Containers []struct {
				Name         string               `json:"name"`
				VolumeMounts []corev1.VolumeMount `json:"volumeMounts"`
			} `json:"containers"`
			Volumes []corev1.Volume `json:"volumes"`
		} `json:"podSpecOverrides"`
	} `json:"spec"`
}

// lintTrainJobs checks rendered TrainJobs: the CRD schema (strictly, as `kubectl apply --validate=strict`), metadata
// as ObjectMeta, resources and volumes as the typed core API, and Distillery's rules: the trainer runs train_sft.py
// on a config, one process per GPU, and the config and events file lie on the mounted artifacts volume.
func lintTrainJobs(dir, crdFile string, p *problems) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	sort.Strings(files)
	if len(files) == 0 {
		p.add(dir, "no TrainJob manifests (*.yaml)")
		return
	}
	sch, err := loadCRDSchema(crdFile, "TrainJob", "v1alpha1", "Kubeflow Trainer")
	if err != nil {
		p.add(crdFile, "%v", err)
		return
	}
	for _, f := range files {
		docs, err := readDocuments(f)
		if err != nil {
			p.add(f, "%v", err)
			continue
		}
		for i, doc := range docs {
			lintTrainJob(f, i, doc, sch, p)
		}
	}
}

func lintTrainJob(file string, index int, doc []byte, sch *scaledObjectSchema, p *problems) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		p.add(file, "document %d: %v", index, err)
		return
	}
	// Unknown fields are the schema's to report; here only malformed values (bad quantities, wrong types).
	var tj trainJob
	if _, err := sigsjson.UnmarshalStrict(js, &tj); err != nil {
		p.add(file, "document %d: %v", index, err)
		return
	}
	where := fmt.Sprintf("%s#%d TrainJob/%s", filepath.Base(file), index, tj.Name)
	if tj.APIVersion != "trainer.kubeflow.org/v1alpha1" || tj.Kind != "TrainJob" {
		p.add(file, "%s: apiVersion/kind %s %s, want trainer.kubeflow.org/v1alpha1 TrainJob", where, tj.APIVersion, tj.Kind)
		return
	}
	// metadata strictly as ObjectMeta (the CRD only says "object").
	var meta struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	_ = json.Unmarshal(js, &meta)
	var om metav1.ObjectMeta
	if strict, err := sigsjson.UnmarshalStrict(meta.Metadata, &om, sigsjson.DisallowUnknownFields); err != nil {
		p.add(file, "%s: metadata: %v", where, err)
	} else {
		for _, e := range strict {
			p.add(file, "%s: metadata: %v", where, e)
		}
	}
	// The controller names the JobSet, its Jobs and Services after the TrainJob: a DNS-1035 label.
	for _, msg := range validation.IsDNS1035Label(tj.Name) {
		p.add(file, "%s: metadata.name %q: %s", where, tj.Name, msg)
	}
	for k, v := range tj.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			p.add(file, "%s: label key %q: %s", where, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			p.add(file, "%s: label %s=%q: %s", where, k, v, msg)
		}
	}
	for _, e := range sch.validate(js) {
		p.add(file, "%s: %s", where, e)
	}
	t := tj.Spec.Trainer
	if t == nil {
		p.add(file, "%s: spec.trainer is required (image, command, numNodes)", where)
		return
	}
	if t.Image == "" {
		p.add(file, "%s: spec.trainer.image is required: the GPU worker's image", where)
	}
	argv := append(append([]string{}, t.Command...), t.Args...)
	cmd := strings.Join(argv, " ")
	config := ""
	for i, a := range argv {
		if a == "--config" && i+1 < len(argv) {
			config = argv[i+1]
		}
	}
	if !strings.Contains(cmd, "sft/train_sft.py") || config == "" {
		p.add(file, "%s: spec.trainer.command must run sft/train_sft.py --config <file>", where)
	}
	if t.NumNodes == nil || *t.NumNodes < 1 {
		p.add(file, "%s: spec.trainer.numNodes must be >= 1", where)
	}
	procs := 0
	switch v := t.NumProcPerNode.(type) {
	case int64: // sigs.k8s.io/json decodes whole numbers as int64
		procs = int(v)
	case float64:
		procs = int(v)
	default:
		p.add(file, "%s: spec.trainer.numProcPerNode must be an integer (the trainer processes per node)", where)
	}
	if t.ResourcesPerNode != nil {
		gpu := t.ResourcesPerNode.Limits[gpuResource]
		if !gpu.IsZero() && int(gpu.Value()) != procs {
			p.add(file, "%s: resourcesPerNode.limits nvidia.com/gpu=%s but numProcPerNode=%d: one process per GPU", where, gpu.String(), procs)
		}
		if req, ok := t.ResourcesPerNode.Requests[gpuResource]; ok && !req.Equal(gpu) {
			p.add(file, "%s: nvidia.com/gpu request %s differs from its limit %s", where, req.String(), gpu.String())
		}
	}
	// The config, the data and the checkpoints are on the artifacts volume: it must be mounted in the node container.
	mounts := map[string]string{}
	volumes := map[string]bool{}
	for _, o := range tj.Spec.PodSpecOverrides {
		for _, v := range o.Volumes {
			volumes[v.Name] = true
		}
		targetsNode := false
		for _, j := range o.TargetJobs {
			targetsNode = targetsNode || j.Name == "node"
		}
		for _, c := range o.Containers {
			for _, m := range c.VolumeMounts {
				if targetsNode && c.Name == "node" {
					mounts[m.MountPath] = m.Name
				}
			}
		}
	}
	for path, vol := range mounts {
		if !volumes[vol] {
			p.add(file, "%s: volumeMount %s at %s names no volume of the overrides", where, vol, path)
		}
	}
	under := func(f string) bool {
		for m := range mounts {
			if strings.HasPrefix(f, strings.TrimSuffix(m, "/")+"/") {
				return true
			}
		}
		return false
	}
	if config != "" && !under(config) {
		p.add(file, "%s: the trainer config %s is not on a volume mounted in the node container (podSpecOverrides for targetJobs node)", where, config)
	}
	for _, e := range t.Env {
		if e.Name == "DISTILLERY_EVENTS_FILE" && !under(e.Value) {
			p.add(file, "%s: DISTILLERY_EVENTS_FILE %s is not on a mounted volume: the activity could not follow the trainer", where, e.Value)
		}
	}
}
