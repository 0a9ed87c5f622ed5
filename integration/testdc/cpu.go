package testdc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Usage is what the DC's processes have used of the machine's CPUs so far.
type Usage struct {
	// CPU is the time its threads ran.
	CPU time.Duration
	// Waited is the time its threads were ready to run but waited for a
	// CPU taken by other work (the run-queue delay).
	Waited time.Duration
}

// Sub is u - o: the usage between two readings.
func (u Usage) Sub(o Usage) Usage { return Usage{CPU: u.CPU - o.CPU, Waited: u.Waited - o.Waited} }

// Add is u + o: the usage of two runs together.
func (u Usage) Add(o Usage) Usage { return Usage{CPU: u.CPU + o.CPU, Waited: u.Waited + o.Waited} }

// ReadUsage reads the DC's usage from the scheduler's per-thread accounting
// (/proc/PID/task/TID/schedstat) of the samba master and every process in
// its session: start makes it a session leader, and its service and worker
// processes, which rewrite their command lines, stay in the session.
// Benchmarks read it before and after a run to charge the DC's own work per
// operation. Threads that exited between two readings drop out of the sum,
// so read it around runs in which the DC keeps its workers (Samba's
// prefork model does).
func ReadUsage(info *Info) (Usage, error) {
	cfg := Config{Dir: info.Dir, Addr: info.Addr}.withDefaults()
	sid, err := readPID(cfg)
	if err != nil || sid <= 0 {
		return Usage{}, fmt.Errorf("testdc: the DC's pid file: %w", errors.Join(err, errNotRunning))
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	found := false
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		session, err := statSession(string(b))
		if err != nil {
			return Usage{}, err
		}
		if session != sid {
			continue
		}
		found = true
		tasks, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "task"))
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "task", t.Name(), "schedstat"))
			if err != nil {
				continue // exited meanwhile
			}
			tu, err := parseSchedstat(string(b))
			if err != nil {
				return Usage{}, err
			}
			u.CPU += tu.CPU
			u.Waited += tu.Waited
		}
	}
	if !found {
		return Usage{}, errNotRunning
	}
	return u, nil
}

var errNotRunning = errors.New("testdc: no process of this DC is running")

// statSession reads the session id (field 6) from a /proc/PID/stat line.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses, so fields are counted after its last closing parenthesis.
func statSession(stat string) (int, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("testdc: malformed /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so the session (field 6) is f[3].
	if len(f) < 4 {
		return 0, errors.New("testdc: short /proc stat line")
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return 0, fmt.Errorf("testdc: /proc stat line: %w", err)
	}
	return sid, nil
}

// parseSchedstat reads a schedstat line: nanoseconds on a CPU, nanoseconds
// waiting on a run queue, and the number of time slices.
func parseSchedstat(line string) (Usage, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return Usage{}, errors.New("testdc: short schedstat line")
	}
	run, err1 := strconv.ParseInt(f[0], 10, 64)
	wait, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Usage{}, fmt.Errorf("testdc: schedstat line: %w", err)
	}
	return Usage{CPU: time.Duration(run), Waited: time.Duration(wait)}, nil
}
