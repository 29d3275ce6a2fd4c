package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// lintCompose loads the file the way `docker compose config` does (schema, interpolation with the defaults in the
// file, merge keys, consistency of services/volumes/networks), with every profile enabled so optional services
// are checked too; then Distillery's rules for its workers.
func lintCompose(file, repoRoot string, p *problems) {
	abs, err := filepath.Abs(file)
	if err != nil {
		p.add(file, "%v", err)
		return
	}
	// Only the file's own ${VAR:-default}s: the lint must not depend on the caller's environment.
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv([]string{}),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		p.add(file, "%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	project, err := opts.LoadProject(ctx)
	if err != nil {
		p.add(file, "%v", err)
		return
	}
	names := make([]string, 0, len(project.Services))
	for n := range project.Services {
		names = append(names, n)
	}
	sort.Strings(names)

	dockerfiles := map[string]*dockerfileInfo{}
	var workers []types.ServiceConfig
	for _, n := range names {
		s := project.Services[n]
		if s.Image == "" {
			p.add(file, "service %s: no image name (needed to push/pull the built image)", n)
		} else if tag := imageTag(s.Image); tag == "" || tag == "latest" {
			p.add(file, "service %s: image %q: pin a tag other than latest", n, s.Image)
		}
		// What the container runs: the service's command, else the CMD of the stage it builds.
		cmd := strings.Join(s.Command, " ")
		if s.Build != nil && repoRoot != "" {
			if stageCmd := checkBuild(file, n, s.Build, repoRoot, dockerfiles, p); cmd == "" {
				cmd = stageCmd
			}
		}
		if want, ok := workerEntry[n]; ok && cmd != "" && !strings.Contains(cmd, want) {
			p.add(file, "service %s runs %q, not %s (check its build target)", n, cmd, want)
		}
		if strings.HasSuffix(n, "-worker") {
			workers = append(workers, s)
		}
	}
	for _, n := range names {
		for dep, d := range project.Services[n].DependsOn {
			target, ok := project.Services[dep]
			if ok && d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable) {
				p.add(file, "service %s waits for %s to be healthy, but %s has no healthcheck here", n, dep, dep)
			}
		}
	}
	// compose-go resolves these paths but leaves their existence to `docker compose up`.
	for name, c := range project.Configs {
		if c.File != "" {
			if _, err := os.Stat(c.File); err != nil {
				p.add(file, "config %s: file %s does not exist", name, c.File)
			}
		}
	}
	for _, want := range []string{"temporal", "temporal-ui", "postgresql", "cpu-worker", "gpu-worker"} {
		if _, ok := project.Services[want]; !ok {
			p.add(file, "service %s is missing", want)
		}
	}
	lintWorkers(file, project, workers, p)
}

func imageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		return "digest"
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}

var workerEntry = map[string]string{"cpu-worker": "dist/workers/cpu.js", "gpu-worker": "dist/workers/gpu.js"}

// checkBuild checks a service's build section and returns the CMD of the stage it builds ("" if unknown).
func checkBuild(file, service string, b *types.BuildConfig, repoRoot string, cache map[string]*dockerfileInfo, p *problems) string {
	ctxDir := b.Context
	if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
		p.add(file, "service %s: build context %s is not a directory", service, ctxDir)
		return ""
	}
	rootAbs, _ := filepath.Abs(repoRoot)
	if filepath.Clean(ctxDir) != filepath.Clean(rootAbs) {
		p.add(file, "service %s: build context %s is not the repository root %s", service, ctxDir, rootAbs)
	}
	df := b.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(ctxDir, df)
	}
	info, ok := cache[df]
	if !ok {
		var err error
		info, err = parseDockerfile(df, ctxDir, &problems{})
		if err != nil {
			p.add(file, "service %s: dockerfile %s: %v", service, df, err)
			return ""
		}
		cache[df] = info
	}
	target := b.Target
	if target == "" && len(info.stages) > 0 {
		target = info.stages[len(info.stages)-1]
	}
	if b.Target != "" && !info.hasStage(b.Target) {
		p.add(file, "service %s: build target %q is not a stage of %s (stages: %s)", service, b.Target, df, strings.Join(info.stages, ", "))
		return ""
	}
	return info.cmd[strings.ToLower(target)]
}

func envValue(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

func lintWorkers(file string, project *types.Project, workers []types.ServiceConfig, p *problems) {
	var artifactVolume string
	for _, w := range workers {
		// Same Temporal cluster and queues for every worker.
		addr, ok := envValue(w, "TEMPORAL_ADDRESS")
		if !ok || addr == "" {
			p.add(file, "service %s: TEMPORAL_ADDRESS is not set", w.Name)
		} else if host := strings.Split(addr, ":")[0]; !strings.Contains(host, ".") {
			if _, ok := project.Services[host]; !ok {
				p.add(file, "service %s: TEMPORAL_ADDRESS %s names no service of this file", w.Name, addr)
			} else if dep, ok := w.DependsOn[host]; !ok || dep.Condition != types.ServiceConditionHealthy {
				p.add(file, "service %s: should depend on %s with condition service_healthy", w.Name, host)
			}
		}
		// Artifacts travel between stages as files: one shared volume at the same path on every worker.
		found := false
		for _, v := range w.Volumes {
			if v.Target == "/app/artifacts" {
				found = true
				if v.Type != types.VolumeTypeVolume {
					p.add(file, "service %s: /app/artifacts should be a named volume shared by the workers", w.Name)
				} else if artifactVolume == "" {
					artifactVolume = v.Source
				} else if artifactVolume != v.Source {
					p.add(file, "service %s: /app/artifacts is volume %q, another worker has %q: the workers must share it", w.Name, v.Source, artifactVolume)
				}
			}
		}
		if !found {
			p.add(file, "service %s: no volume at /app/artifacts (artifacts must be shared by the workers)", w.Name)
		}
		if addr, ok := envValue(w, "DISTILLERY_METRICS_ADDRESS"); ok && addr != "" {
			lintMetrics(file, w, addr, p)
		}
	}
	if gpu, ok := project.Services["gpu-worker"]; ok {
		lintGpuWorker(file, gpu, p)
	}
	if cpu, ok := project.Services["cpu-worker"]; ok {
		if v, ok := envValue(cpu, "DISTILLERY_GPU_SLOTS"); ok && v != "" {
			p.add(file, "service cpu-worker: DISTILLERY_GPU_SLOTS is a GPU worker setting")
		}
	}
}

func lintGpuWorker(file string, s types.ServiceConfig, p *problems) {
	spec, ok := envValue(s, "DISTILLERY_GPU_SLOTS")
	if !ok || spec == "" {
		p.add(file, "service gpu-worker: DISTILLERY_GPU_SLOTS is not set (the worker would run one CPU slot)")
		return
	}
	slots, err := parseSlots(spec)
	if err != nil {
		p.add(file, "service gpu-worker: %v", err)
		return
	}
	if slots == nil {
		p.add(file, "service gpu-worker: DISTILLERY_GPU_SLOTS=cpu: the GPU worker would use no GPU")
		return
	}
	count, needed := gpusUsed(slots)
	// How many GPUs the container sees: NVIDIA_VISIBLE_DEVICES under the NVIDIA runtime, or a device reservation.
	visible := -2 // unknown
	hasGPU := false
	if s.Runtime == "nvidia" {
		hasGPU = true
		if v, ok := envValue(s, "NVIDIA_VISIBLE_DEVICES"); ok {
			switch strings.TrimSpace(v) {
			case "all":
				visible = -1
			case "", "none", "void":
				p.add(file, "service gpu-worker: NVIDIA_VISIBLE_DEVICES=%q gives the container no GPU", v)
				visible = 0
			default:
				visible = len(strings.Split(v, ","))
			}
		} else {
			visible = -1 // the CUDA base image's default: all
		}
	}
	if r := resourceReservations(s); r != nil {
		for _, d := range r.Devices {
			if d.Driver == "nvidia" || contains(d.Capabilities, "gpu") {
				hasGPU = true
				switch {
				case len(d.IDs) > 0:
					visible = len(d.IDs)
				case d.Count == -1:
					visible = -1
				case d.Count > 0:
					visible = int(d.Count)
				}
			}
		}
	}
	if !hasGPU {
		p.add(file, "service gpu-worker: no GPU: set runtime: nvidia or reserve nvidia devices")
		return
	}
	if visible >= 0 && needed > visible {
		p.add(file, "service gpu-worker: DISTILLERY_GPU_SLOTS=%s uses GPU index %d but the container sees %d GPU(s)", spec, needed-1, visible)
	}
	if visible > 0 && count < visible {
		p.add(file, "service gpu-worker: %d GPU(s) visible but DISTILLERY_GPU_SLOTS=%s uses %d: one slot per GPU", visible, spec, count)
	}
	if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= 60*time.Second {
		p.add(file, "service gpu-worker: stop_grace_period must exceed the worker's 60 s shutdown grace (trainer checkpoint on SIGTERM)")
	}
}

// lintMetrics: the Prometheus endpoint must listen beyond the container's loopback and its port be reachable.
func lintMetrics(file string, w types.ServiceConfig, addr string, p *problems) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(file, "service %s: DISTILLERY_METRICS_ADDRESS=%q: %v", w.Name, addr, err)
		return
	}
	if host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1" {
		p.add(file, "service %s: DISTILLERY_METRICS_ADDRESS=%s listens on the container's loopback: use 0.0.0.0:%s", w.Name, addr, port)
	}
	reachable := contains(w.Expose, port)
	for _, pc := range w.Ports {
		if strconv.Itoa(int(pc.Target)) == port {
			reachable = true
		}
	}
	if !reachable {
		p.add(file, "service %s: metrics port %s is neither published (ports) nor exposed (expose)", w.Name, port)
	}
}

func resourceReservations(s types.ServiceConfig) *types.Resource {
	if s.Deploy == nil {
		return nil
	}
	return s.Deploy.Resources.Reservations
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
