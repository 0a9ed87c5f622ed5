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

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUTime is the CPU time (user + system) used so far by the DC's
// processes: the samba master and every process in its session (start
// makes it a session leader; its service and worker processes, which
// rewrite their command lines, stay in the session). Benchmarks read it
// before and after a run to charge the DC's own work per operation.
// Processes that exited between two readings drop out of the sum, so read
// it around runs in which the DC keeps its workers (Samba's prefork model).
func CPUTime(info *Info) (time.Duration, error) {
	cfg := Config{Dir: info.Dir, Addr: info.Addr}.withDefaults()
	sid, err := readPID(cfg)
	if err != nil || sid <= 0 {
		return 0, fmt.Errorf("testdc: the DC's pid file: %w", errors.Join(err, errNotRunning))
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	found := false
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(string(b))
		if err != nil {
			return 0, err
		}
		if st.session == sid {
			ticks += st.ticks
			found = true
		}
	}
	if !found {
		return 0, errNotRunning
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

var errNotRunning = errors.New("testdc: no process of this DC is running")

type procStat struct {
	session int
	ticks   int64 // utime + stime
}

// parseStat reads the session (field 6) and utime + stime (fields 14 and
// 15) from a /proc/PID/stat line. The command name (field 2) is in
// parentheses and may hold spaces and parentheses, so fields are counted
// after its last closing parenthesis.
func parseStat(stat string) (procStat, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return procStat{}, errors.New("testdc: malformed /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): the session is f[3], utime f[11], stime f[12].
	if len(f) < 13 {
		return procStat{}, errors.New("testdc: short /proc stat line")
	}
	sid, err0 := strconv.Atoi(f[3])
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err0, err1, err2); err != nil {
		return procStat{}, fmt.Errorf("testdc: /proc stat line: %w", err)
	}
	return procStat{session: sid, ticks: u + s}, nil
}
