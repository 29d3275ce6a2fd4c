package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var slotRe = regexp.MustCompile(`^(\d+)(?:-(\d+))?$`)

// parseSlots mirrors workers/gpu.ts parseSlots: "cpu", or comma-separated GPU indices / ranges ("0,1", "0-1,2-3").
// It returns the GPU indices of each slot (nil for "cpu").
func parseSlots(spec string) ([][]int, error) {
	if strings.TrimSpace(spec) == "cpu" {
		return nil, nil
	}
	var slots [][]int
	seen := map[int]bool{}
	for _, s := range strings.Split(spec, ",") {
		m := slotRe.FindStringSubmatch(strings.TrimSpace(s))
		if m == nil {
			return nil, fmt.Errorf("DISTILLERY_GPU_SLOTS: %q is not a GPU index or range (e.g. 0 or 0-3)", s)
		}
		from, _ := strconv.Atoi(m[1])
		to := from
		if m[2] != "" {
			to, _ = strconv.Atoi(m[2])
		}
		if to < from {
			return nil, fmt.Errorf("DISTILLERY_GPU_SLOTS: range %q is empty", s)
		}
		var slot []int
		for i := from; i <= to; i++ {
			if seen[i] {
				return nil, fmt.Errorf("DISTILLERY_GPU_SLOTS: GPU %d is in two slots", i)
			}
			seen[i] = true
			slot = append(slot, i)
		}
		slots = append(slots, slot)
	}
	return slots, nil
}

// gpusUsed is the number of distinct GPUs the slots use and the highest index (+1) they need.
func gpusUsed(slots [][]int) (count, needed int) {
	for _, s := range slots {
		for _, g := range s {
			count++
			if g+1 > needed {
				needed = g + 1
			}
		}
	}
	return count, needed
}
