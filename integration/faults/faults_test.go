//go:build integration

package faults

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
)

// TestKill9DuringBurst kills the connector with SIGKILL at random points of
// a burst (chosen by how many audit records it has written, plus a random
// delay, so kills land before apply, between apply and journal, between
// journal and report, and before settle), restarts it on the same journal,
// and checks that every command ends with exactly one effect in AD and a
// verified result.
//
// Service Bus keeps a dead receiver's locks until they expire; the
// emulator hands the messages out again at once. The restart therefore
// waits a few seconds, so the dead process's in-flight LDAP writes have
// landed before the command is picked up again (see
// TestKill9ImmediateRedelivery for what happens without the pause).
func TestKill9DuringBurst(t *testing.T) { kill9(t, 3*time.Second) }

// TestKill9ImmediateRedelivery restarts at once after SIGKILL. A reset sent
// by the killed process may still be queued at a busy DC when the restarted
// connector resumes the command from the journal (state "applying") and
// sees pwdLastSet unchanged. It found a double apply (unicodePwd written
// twice); the engine now waits until the first write can no longer land
// (the write window: operation timeout plus a margin) and reads again
// before writing.
func TestKill9ImmediateRedelivery(t *testing.T) { kill9(t, 0) }

func kill9(t *testing.T, pause time.Duration) {
	dc := testdc.Ensure(t)
	s := newWorld(t, dc, 4*time.Second)
	users := s.users(24)
	jobs := s.burst(users) // queued before the connector starts
	s.a.Start()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	kills := 0
	for round := range 8 {
		seen := s.a.AuditCount()
		target := seen + 1 + rng.IntN(3)
		// Wait for progress (or give up on this round once the burst is
		// done), then kill after a random delay of up to 300 ms.
		deadline := time.Now().Add(2 * time.Minute)
		for s.a.AuditCount() < target && time.Now().Before(deadline) && !allDone(jobs) {
			time.Sleep(20 * time.Millisecond)
		}
		if allDone(jobs) {
			break
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		s.a.Kill()
		kills++
		t.Logf("round %d: killed with SIGKILL after %d audit records", round, s.a.AuditCount())
		time.Sleep(pause)
		s.a.Start()
	}
	s.check(jobs)
	t.Logf("%d kills; %d commands each applied once", kills, len(jobs))
	if kills == 0 {
		t.Fatal("the burst finished before any kill: nothing was tested")
	}
}

func allDone(jobs []*job) bool {
	for _, j := range jobs {
		select {
		case <-j.awaited:
		default:
			return false
		}
	}
	return true
}

// TestEmulatorFaults drops connections, force-detaches links, expires locks
// early and restarts the emulator's listener during a burst: no loss, no
// double apply, and the connector process stays up.
func TestEmulatorFaults(t *testing.T) {
	dc := testdc.Ensure(t)
	s := newWorld(t, dc, 5*time.Second)
	users := s.users(20)
	jobs := s.burst(users)
	s.a.Start()
	ctx := context.Background()
	faults := []struct {
		name string
		do   func() error
	}{
		{"drop connections", func() error { _, err := s.Emu.DropConnections(ctx); return err }},
		{"detach links", func() error { _, err := s.Emu.DetachLinks(ctx, s.Queue); return err }},
		{"expire locks", func() error { _, err := s.Emu.ExpireLocks(ctx, s.Queue); return err }},
		{"restart", func() error { return s.Emu.Restart(ctx) }},
		{"expire locks again", func() error { _, err := s.Emu.ExpireLocks(ctx, s.Queue); return err }},
	}
	for _, f := range faults {
		n := s.a.AuditCount()
		stack.WaitFor(t, 2*time.Minute, "progress before "+f.name, func() bool { return s.a.AuditCount() > n || allDone(jobs) })
		if err := f.do(); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		t.Logf("%s after %d audit records", f.name, s.a.AuditCount())
	}
	s.check(jobs)
	if !s.a.Running() {
		t.Fatal("the connector exited")
	}
	st, err := s.Emu.Queue(ctx, s.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeadLettered != 0 || st.Active != 0 {
		t.Fatalf("queue after the burst: %d active, %d dead-lettered", st.Active, st.DeadLettered)
	}
}

// TestDCFaults uses a DC of its own (stopped and started by the test):
// the configured servers are a listener that accepts TCP and never answers,
// an address where nothing listens, then the real DC. Mid-burst the DC is
// stopped and started again. Every command must end applied once.
func TestDCFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := testdc.Config{Dir: t.TempDir() + "/dc", Addr: beside(30), MaxRuntime: 30 * time.Minute, Log: t.Logf}
	dc, err := testdc.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("own DC: %v", err)
	}
	t.Cleanup(func() { _ = testdc.Down(context.Background(), cfg) })
	s := newWorld(t, dc, 10*time.Second, servers("", "ldaps://"+stack.HangingListener(t), "ldaps://"+beside(31)+":636", dc.LDAPSURL))
	users := s.users(12)
	s.a.Start()
	jobs := s.burst(users[:6])
	stack.WaitFor(t, 3*time.Minute, "some commands handled through the dead and hanging servers", func() bool { return s.a.AuditCount() >= 2 })
	later := users[6:]
	v0s := make([]int, len(later))
	for i, u := range later {
		v0s[i] = testdc.PwdVersion(t, dc, u.DN)
	}
	if err := testdc.Stop(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("DC stopped after %d audit records", s.a.AuditCount())
	more := s.burstNoVersion(later)
	for i, j := range more {
		j.v0 = v0s[i]
	}
	jobs = append(jobs, more...)
	n := s.a.AuditCount()
	stack.WaitFor(t, 2*time.Minute, "a command abandoned while the DC is down", func() bool {
		return s.a.AuditCount() > n && strings.Contains(s.a.Audit(), `"abandoned"`)
	})
	if _, err := testdc.Up(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("DC started again")
	s.check(jobs)
	if !s.a.Running() {
		t.Fatal("the connector exited")
	}
}

// beside is the loopback address with last octet n in the shared test DC's
// network ($ADW_TESTDC_ADDR, default 127.77.0.10), so runs on one machine
// with different DC addresses do not collide.
func beside(n byte) string {
	ip := net.ParseIP(os.Getenv("ADW_TESTDC_ADDR")).To4()
	if ip == nil {
		ip = net.IPv4(127, 77, 0, 10).To4()
	}
	return net.IPv4(ip[0], ip[1], ip[2], n).String()
}

// burstNoVersion is burst for users whose version was read while the DC was
// up (the DC is down now): it reads versions lazily in check.
func (s *world) burstNoVersion(users []testdc.SeedUser) []*job {
	return s.burstWith(users, false)
}

// TestJournalDiskFull runs the connector with a file-size limit
// (RLIMIT_FSIZE, as a full disk refuses the journal's growth). Checked:
// the connector says so (an error naming the journal, /readyz 503 with the
// journal check failing) and stops taking work (no new audit records, the
// queue's delivery counts stop rising: held deliveries keep their locks);
// nothing is applied twice; nothing is lost (a message is completed only
// after its result was sent; every other command stays in the queue); and
// once the limit is gone every command ends applied exactly once with a
// result.
func TestJournalDiskFull(t *testing.T) {
	dc := testdc.Ensure(t)
	s := newWorld(t, dc, 5*time.Second)
	users := s.users(20)
	// bbolt grows its file in steps (32, 64, 128 KiB, ...); with 40 KiB it
	// cannot grow past the first 32 KiB, which hold a few commands.
	s.a.Start(stack.Wrap("prlimit", "--fsize=40960", "--"))
	jobs := s.burst(users)
	stack.WaitFor(t, 2*time.Minute, "the connector to say the journal is not writable", func() bool {
		return strings.Contains(s.a.Logs(), "journal not writable: stopped taking work") || !s.a.Running()
	})
	if !s.a.Running() {
		t.Fatal("the connector exited when the journal could not grow")
	}
	stack.WaitFor(t, time.Minute, "/readyz to fail on the journal", func() bool {
		b, err := stack.HTTPGet(s.a.URL("/readyz"))
		return err == nil && strings.Contains(string(b), `"journal"`) && strings.Contains(string(b), "not writable")
	})
	// Stopped: once the commands already past their journal write have
	// finished (the audit count holds still for 2 s), across several of the
	// connector's journal checks (every 2 s) and a lock renewal, nothing
	// new is audited and no message is delivered again.
	stable, last := time.Now(), -1
	stack.WaitFor(t, time.Minute, "the commands in flight to finish", func() bool {
		if n := s.a.AuditCount(); n != last {
			stable, last = time.Now(), n
		}
		return time.Since(stable) > 2*time.Second
	})
	snapshot := func() (int, int) {
		st, err := s.Emu.Queue(context.Background(), s.Queue)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, m := range append(st.Messages, st.LockedMessages...) {
			sum += m.DeliveryCount
		}
		return s.a.AuditCount(), sum
	}
	a0, d0 := snapshot()
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if a, d := snapshot(); a != a0 || d != d0 {
			t.Fatalf("work went on with the journal full: audit records %d -> %d, deliveries %d -> %d", a0, a, d0, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
	answered, appliedUnanswered := 0, 0
	for _, j := range jobs {
		d := testdc.PwdVersion(t, s.DC, j.user.DN) - j.v0
		if d > 1 {
			t.Errorf("%s: applied %d times", j.user.SAM, d)
		}
		select {
		case <-j.awaited:
			if j.err == nil {
				answered++
			}
		default:
			if d == 1 {
				appliedUnanswered++ // written to AD, its outcome held until the journal takes it
			}
		}
	}
	st, err := s.Emu.Queue(context.Background(), s.Queue)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("journal full: %d answered, %d applied in AD and held; queue: %d completed, %d active, %d locked, %d dead-lettered",
		answered, appliedUnanswered, st.Stats.Completed, st.Active, st.Locked, st.DeadLettered)
	if st.Stats.Completed+st.Active+st.Locked+st.DeadLettered < len(jobs) {
		t.Errorf("lost commands: %d completed + %d in the queue < %d sent", st.Stats.Completed, st.Active+st.Locked+st.DeadLettered, len(jobs))
	}
	if st.DeadLettered > 0 {
		t.Errorf("%d commands dead-lettered while the journal was full", st.DeadLettered)
	}
	// Recovery: without the limit, every command ends applied once.
	s.a.Kill()
	s.a.Start()
	s.check(jobs)
}
