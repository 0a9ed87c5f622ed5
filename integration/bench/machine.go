package bench

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPUs      int
	CPUModel  string
	GoVersion string
	OS        string
	Date      time.Time
}

// ThisMachine reads the CPU model from /proc/cpuinfo.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Date: time.Now().UTC()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if m.CPUModel == "" {
		m.CPUModel = "unknown"
	}
	return m
}

// peakRSSKB is the process's peak resident set (VmHWM) in KiB, 0 if unknown.
func peakRSSKB() int64 { return statusKB("VmHWM") }

// rssNowKB is the process's resident set now, in KiB: anonymous (the Go
// heap, stacks) and file-backed (mapped files: the journal), 0 if unknown.
func rssNowKB() (anon, file int64) { return statusKB("RssAnon"), statusKB("RssFile") }

// statusKB is a "Name:   N kB" field of /proc/self/status, 0 if unknown.
func statusKB(name string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, name+":"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: "5" to
// /proc/self/clear_refs), so a phase's peak excludes earlier phases. It
// reports whether the reset worked.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
