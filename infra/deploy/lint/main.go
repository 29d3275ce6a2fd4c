// deploy-lint validates Distillery's deployment files offline (no cluster, no Docker daemon, no network):
//
//	deploy-lint compose    -f docker-compose.yml [-context DIR]
//	deploy-lint k8s        -dir k8s/ -keda-crd keda.sh_scaledobjects.yaml
//	deploy-lint trainjob   -dir rendered/ -crd trainer.kubeflow.org_trainjobs.yaml
//	deploy-lint dockerfile -f Dockerfile.worker -context DIR
//
// compose: the Compose Specification loader that `docker compose config` uses (compose-go: JSON-schema validation,
// interpolation, merge keys, consistency checks), with every profile enabled, plus Distillery's own rules.
// k8s: every document is decoded strictly (unknown or duplicate fields, wrong types, bad quantities are errors)
// into the typed Kubernetes API structs of k8s.io/api; KEDA ScaledObjects are validated against KEDA's own CRD
// schema and the temporal scaler's metadata; then cross-object rules (selectors, references, GPU slots).
// trainjob: Kubeflow Trainer TrainJobs as the fine-tune activity renders them, against the TrainJob CRD's schema
// (Go module github.com/kubeflow/trainer/v2) plus the rules the trainer relies on (volumes, one process per GPU).
// dockerfile: stages, targets and build-context paths the compose file and COPY instructions rely on.
//
// Every problem is printed as "error: <file>: <message>"; the exit status is 1 when there was any.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type problems struct {
	list []string
}

func (p *problems) add(file, format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf("%s: %s", file, fmt.Sprintf(format, args...)))
}

func (p *problems) report(what string) int {
	if len(p.list) == 0 {
		fmt.Printf("ok: %s\n", what)
		return 0
	}
	sort.Strings(p.list)
	for _, m := range p.list {
		fmt.Fprintf(os.Stderr, "error: %s\n", m)
	}
	fmt.Fprintf(os.Stderr, "FAILED: %s: %d problem(s)\n", what, len(p.list))
	return 1
}

func usage() {
	fmt.Fprintln(os.Stderr, strings.TrimSpace(`
usage:
  deploy-lint compose    -f docker-compose.yml [-context DIR]
  deploy-lint k8s        -dir DIR -keda-crd FILE
  deploy-lint trainjob   -dir DIR -crd FILE
  deploy-lint dockerfile -f Dockerfile -context DIR`))
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var code int
	switch os.Args[1] {
	case "compose":
		file := fs.String("f", "docker-compose.yml", "compose file")
		ctx := fs.String("context", "", "repository root: checks build contexts and Dockerfile targets (optional)")
		_ = fs.Parse(os.Args[2:])
		p := &problems{}
		lintCompose(*file, *ctx, p)
		code = p.report("compose " + *file)
	case "k8s":
		dir := fs.String("dir", "k8s", "directory of manifests")
		crd := fs.String("keda-crd", "", "KEDA's ScaledObject CRD (config/crd/bases/keda.sh_scaledobjects.yaml)")
		_ = fs.Parse(os.Args[2:])
		if *crd == "" {
			fmt.Fprintln(os.Stderr, "deploy-lint k8s: -keda-crd is required")
			os.Exit(2)
		}
		p := &problems{}
		lintK8s(*dir, *crd, p)
		code = p.report("kubernetes manifests in " + *dir)
	case "trainjob":
		dir := fs.String("dir", "", "directory of rendered TrainJob manifests")
		crd := fs.String("crd", "", "Kubeflow Trainer's TrainJob CRD (manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml)")
		_ = fs.Parse(os.Args[2:])
		if *dir == "" || *crd == "" {
			fmt.Fprintln(os.Stderr, "deploy-lint trainjob: -dir and -crd are required")
			os.Exit(2)
		}
		p := &problems{}
		lintTrainJobs(*dir, *crd, p)
		code = p.report("TrainJob manifests in " + *dir)
	case "dockerfile":
		file := fs.String("f", "Dockerfile", "Dockerfile")
		ctx := fs.String("context", ".", "build context")
		_ = fs.Parse(os.Args[2:])
		p := &problems{}
		if _, err := parseDockerfile(*file, *ctx, p); err != nil {
			p.add(*file, "%v", err)
		}
		code = p.report("dockerfile " + *file)
	default:
		usage()
	}
	os.Exit(code)
}
