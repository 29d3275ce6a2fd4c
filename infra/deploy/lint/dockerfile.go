package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// dockerfileInfo is what the compose and Dockerfile checks need to know about a Dockerfile.
type dockerfileInfo struct {
	stages []string
	cmd    map[string]string // stage -> its CMD (inherited from a parent stage), lower-case stage names
}

func (d *dockerfileInfo) hasStage(name string) bool {
	for _, s := range d.stages {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

var knownInstructions = map[string]bool{
	"FROM": true, "RUN": true, "CMD": true, "LABEL": true, "EXPOSE": true, "ENV": true, "ADD": true, "COPY": true,
	"ENTRYPOINT": true, "VOLUME": true, "USER": true, "WORKDIR": true, "ARG": true, "ONBUILD": true,
	"STOPSIGNAL": true, "HEALTHCHECK": true, "SHELL": true, "MAINTAINER": true,
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

type instruction struct {
	line int
	cmd  string
	args string
}

// readInstructions joins continuation lines and drops comments (the escape character is the default backslash).
func readInstructions(file string) ([]instruction, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(trimmed)
		text := cur.String()
		cur.Reset()
		if strings.TrimSpace(text) == "" {
			continue
		}
		parts := strings.SplitN(strings.TrimSpace(text), " ", 2)
		ins := instruction{line: start, cmd: strings.ToUpper(parts[0])}
		if len(parts) == 2 {
			ins.args = strings.TrimSpace(parts[1])
		}
		out = append(out, ins)
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends inside a continued instruction", start)
	}
	return out, sc.Err()
}

// parseDockerfile checks a multi-stage Dockerfile: known instructions, FROM images and stage names, ARG use in
// FROM, COPY --from stages, and COPY/ADD sources present in the build context and not excluded by the
// Dockerfile's own ignore file (<Dockerfile>.dockerignore, else <context>/.dockerignore).
func parseDockerfile(file, context string, p *problems) (*dockerfileInfo, error) {
	ins, err := readInstructions(file)
	if err != nil {
		return nil, err
	}
	info := &dockerfileInfo{cmd: map[string]string{}}
	globalArgs := map[string]bool{}
	stage := ""
	seenFrom := false
	ignore := loadDockerignore(file, context)
	for _, in := range ins {
		where := fmt.Sprintf("line %d", in.line)
		if !knownInstructions[in.cmd] {
			p.add(file, "%s: unknown instruction %q", where, in.cmd)
			continue
		}
		switch in.cmd {
		case "ARG":
			name := strings.SplitN(in.args, "=", 2)[0]
			if !seenFrom {
				globalArgs[name] = true
			}
		case "FROM":
			seenFrom = true
			fields := strings.Fields(in.args)
			var image string
			stage = ""
			rest := []string{}
			for _, f := range fields {
				if !strings.HasPrefix(f, "--") {
					rest = append(rest, f)
				}
			}
			switch {
			case len(rest) == 1:
				image = rest[0]
			case len(rest) == 3 && strings.EqualFold(rest[1], "AS"):
				image, stage = rest[0], rest[2]
			default:
				p.add(file, "%s: FROM expects `image [AS name]`, got %q", where, in.args)
				continue
			}
			for _, m := range varRef.FindAllStringSubmatch(image, -1) {
				if !globalArgs[m[1]] {
					p.add(file, "%s: FROM uses $%s, which no ARG before the first FROM declares", where, m[1])
				}
			}
			if !strings.Contains(image, "$") && !info.hasStage(image) && image != "scratch" && !strings.Contains(image, ":") && !strings.Contains(image, "@") {
				p.add(file, "%s: FROM %s has no tag: pin a version", where, image)
			}
			if stage != "" {
				if info.hasStage(stage) {
					p.add(file, "%s: stage %q is defined twice", where, stage)
				}
				info.stages = append(info.stages, stage)
				info.cmd[strings.ToLower(stage)] = info.cmd[strings.ToLower(image)]
			}
		case "CMD":
			if stage != "" {
				info.cmd[strings.ToLower(stage)] = execForm(in.args)
			}
		case "COPY", "ADD":
			from := ""
			var args []string
			rest := in.args
			for strings.HasPrefix(rest, "--") {
				parts := strings.SplitN(rest, " ", 2)
				if strings.HasPrefix(parts[0], "--from=") {
					from = strings.TrimPrefix(parts[0], "--from=")
				}
				if len(parts) < 2 {
					rest = ""
					break
				}
				rest = strings.TrimSpace(parts[1])
			}
			if strings.HasPrefix(rest, "[") {
				if err := json.Unmarshal([]byte(rest), &args); err != nil {
					p.add(file, "%s: %s: bad JSON array: %v", where, in.cmd, err)
					continue
				}
			} else {
				args = strings.Fields(rest)
			}
			if len(args) < 2 {
				p.add(file, "%s: %s needs at least one source and a destination", where, in.cmd)
				continue
			}
			if from != "" {
				if !info.hasStage(from) && !strings.ContainsAny(from, ":/") {
					p.add(file, "%s: COPY --from=%s: no earlier stage of that name", where, from)
				}
				continue
			}
			for _, src := range args[:len(args)-1] {
				if strings.Contains(src, "://") || strings.Contains(src, "$") {
					continue
				}
				checkContextPath(file, where, context, src, ignore, p)
			}
		}
	}
	if !seenFrom {
		p.add(file, "no FROM instruction")
	}
	return info, nil
}

// execForm turns a JSON-array instruction argument into one space-separated string; shell form stays as it is.
func execForm(args string) string {
	var list []string
	if json.Unmarshal([]byte(args), &list) == nil {
		return strings.Join(list, " ")
	}
	return args
}

func checkContextPath(file, where, context, src string, ignore []string, p *problems) {
	rel := filepath.Clean(strings.TrimPrefix(src, "/"))
	if rel == "." {
		return
	}
	if strings.HasPrefix(rel, "..") {
		p.add(file, "%s: source %q is outside the build context", where, src)
		return
	}
	matches, _ := filepath.Glob(filepath.Join(context, rel))
	if len(matches) == 0 {
		p.add(file, "%s: source %q is not in the build context %s", where, src, context)
		return
	}
	if pat := ignoredBy(rel, ignore); pat != "" {
		p.add(file, "%s: source %q is excluded from the build context by the ignore pattern %q", where, src, pat)
	}
}

func loadDockerignore(dockerfile, context string) []string {
	for _, f := range []string{dockerfile + ".dockerignore", filepath.Join(context, ".dockerignore")} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var pats []string
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!") {
				continue
			}
			pats = append(pats, strings.TrimPrefix(filepath.Clean(l), "/"))
		}
		return pats
	}
	return nil
}

// ignoredBy returns the pattern that excludes rel (or one of its parent directories), "" if none does.
// Supports the common forms: plain paths, * and ? globs, and a leading **/.
func ignoredBy(rel string, patterns []string) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for _, pat := range patterns {
		anyDepth := strings.HasPrefix(pat, "**/")
		body := strings.TrimPrefix(pat, "**/")
		bodyParts := strings.Split(body, "/")
		for start := 0; start < len(parts); start++ {
			if start > 0 && !anyDepth {
				break
			}
			for end := start + len(bodyParts); end <= len(parts); end++ {
				if end-start != len(bodyParts) {
					break
				}
				ok := true
				for i, bp := range bodyParts {
					if m, _ := filepath.Match(bp, parts[start+i]); !m {
						ok = false
						break
					}
				}
				if ok {
					return pat
				}
			}
		}
	}
	return ""
}
