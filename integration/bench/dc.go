package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// DCOptions configure the DC-bound run.
type DCOptions struct {
	// Info is the running test DC (testdc.Up).
	Info *testdc.Info
	// Baseline resets for the bare loop and for the naive approach each.
	Baseline int
	// Burst commands through the full pipeline.
	Burst int
	// Rounds: (1) and (3) alternate this many times (default 1), each
	// round a share of Baseline and Burst.
	Rounds int
	// Users to spread the resets over (created for the run, deleted after).
	Users int
	// PoolSizes: the pipeline (3) runs once per LDAP pool size (the
	// connector's connections to the DC), in the same rounds; the first
	// is the one the targets are checked on. Default 1 then 4 (the
	// connector's default).
	PoolSizes []int
	// Dir for config, keys, journal; a temp dir if empty.
	Dir string
	// Log receives progress lines (nil: silent).
	Log func(format string, a ...any)
}

// Throughput is one measured way of resetting passwords.
type Throughput struct {
	Name    string
	N       int
	Wall    time.Duration
	PerSec  float64
	Latency Latencies
	Errors  int
	// DC is what the DC's processes used of the CPUs during the run
	// (zero when it could not be read).
	DC testdc.Usage
}

// DCCPUPerOp is the DC's CPU time per successful reset.
func (t Throughput) DCCPUPerOp() time.Duration { return t.perOp(t.DC.CPU) }

// DCWaitPerOp is how long, per successful reset, the DC was ready to run
// but waited for a CPU that other work held.
func (t Throughput) DCWaitPerOp() time.Duration { return t.perOp(t.DC.Waited) }

func (t Throughput) perOp(d time.Duration) time.Duration {
	ok := t.N - t.Errors
	if ok <= 0 {
		return 0
	}
	return d / time.Duration(ok)
}

// DCBusy is the share of one core the DC used during the run.
func (t Throughput) DCBusy() float64 {
	if t.Wall <= 0 {
		return 0
	}
	return float64(t.DC.CPU) / float64(t.Wall)
}

// DCResult is the DC-bound comparison.
type DCResult struct {
	Bare, Naive Throughput
	// Lookup is (1) with the pipeline's per-reset user lookup before each
	// write (the same subtree search and attributes): the DC's limit for
	// the work the pipeline must ask of it.
	Lookup Throughput
	// Pipelines are (3), one per pool size (DCOptions.PoolSizes).
	Pipelines []PipelineResult
}

// PipelineResult is (3) at one LDAP pool size.
type PipelineResult struct {
	PoolSize int
	Throughput
	// Codes of the pipeline's results.
	Codes map[protocol.ResultCode]int
}

// Pipeline is (3) at the first pool size: the one the targets are checked on.
func (r *DCResult) Pipeline() PipelineResult { return r.Pipelines[0] }

// VsBare is (3)/(1); VsNaive is (3)/(2).
func (r *DCResult) VsBare() float64  { return r.Pipeline().PerSec / r.Bare.PerSec }
func (r *DCResult) VsNaive() float64 { return r.Pipeline().PerSec / r.Naive.PerSec }

type dcUser struct{ dn, sam string }

// DCBound measures (1) a bare go-ldap reset loop on one LDAPS connection,
// (2) dial+bind+modify+close per reset, and (3) the full pipeline
// (emulator -> connector -> DC -> reply), all against the same DC, bound
// as the connector's least-privilege service account.
func DCBound(ctx context.Context, opt DCOptions) (*DCResult, error) {
	logf := opt.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opt.Users <= 0 {
		opt.Users = 50
	}
	dir := opt.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "adwriteback-dcbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	info := opt.Info
	logf("creating %d benchmark users", opt.Users)
	users, cleanup, err := createUsers(ctx, info, opt.Users)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	res := &DCResult{}
	var seq int
	pw := func() string { seq++; return fmt.Sprintf("Dcb!Reset.%07d", seq) }

	// reset writes a fresh password to the i-th user over c: what every
	// baseline measures, one replace of unicodePwd.
	reset := func(c *ldap.Conn, i int) error {
		m := ldap.NewModifyRequest(users[i%len(users)].dn, nil)
		m.Replace("unicodePwd", []string{testdc.EncodePassword(pw())})
		return c.Modify(m)
	}
	// oneConn runs n resets on one bound connection, each after before
	// (nil: none).
	oneConn := func(n int, before func(c *ldap.Conn, i int) error) (resetRun, error) {
		c, err := testdc.Bind(ctx, info, info.ServiceDN, info.ServicePass)
		if err != nil {
			return resetRun{}, err
		}
		defer c.Close()
		return runResets(n, func(i int) error {
			if before != nil {
				if err := before(c, i); err != nil {
					return err
				}
			}
			return reset(c, i)
		}), nil
	}

	// (1) and (3) alternate in rounds, after (2), so a DC whose speed
	// drifts during the run (its database grows, other work on the
	// machine comes and goes) weighs on both alike.
	bare := func(n int) (resetRun, error) { return oneConn(n, nil) }
	// dcCPU charges what the DC used during run to it.
	dcCPU := func(run func() (resetRun, error)) (resetRun, error) {
		var r resetRun
		var err error
		used := dcUsage(info, func() { r, err = run() })
		r.dc = used
		return r, err
	}

	logf("(2) naive: %d x (dial + bind + modify + close)", opt.Baseline)
	naive, _ := dcCPU(func() (resetRun, error) {
		return runResets(opt.Baseline, func(i int) error {
			c, err := testdc.Bind(ctx, info, info.ServiceDN, info.ServicePass)
			if err != nil {
				return err
			}
			defer c.Close()
			return reset(c, i)
		}), nil
	})
	res.Naive = naive.throughput("naive dial+bind+modify+close")

	rounds := max(opt.Rounds, 1)
	pools := opt.PoolSizes
	if len(pools) == 0 {
		pools = []int{1, 4}
	}
	pipes := make([]*pipe, len(pools))
	for i, size := range pools {
		pdir := filepath.Join(dir, fmt.Sprintf("pool%d", size))
		if err := os.MkdirAll(pdir, 0o700); err != nil {
			return nil, err
		}
		p, err := startPipe(ctx, info, pdir, users, opt.Burst/rounds+1, size)
		if err != nil {
			return nil, err
		}
		defer p.close()
		pipes[i] = p
	}
	// lookup is (1) plus, before each write, the reads the connector
	// makes: the user lookup (it must read the account fresh: scope,
	// flags, pwdLastSet and the password version the crash recovery
	// compares) and the account's tokenGroups (tier-0 and excluded
	// groups), a base read.
	lookup := func(n int) (resetRun, error) {
		return oneConn(n, func(c *ldap.Conn, i int) error {
			res, err := c.Search(ldap.NewSearchRequest(info.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
				"(&(objectClass=user)(sAMAccountName="+ldap.EscapeFilter(users[i%len(users)].sam)+"))", ldapx.UserAttributes(), nil))
			if err != nil || len(res.Entries) != 1 {
				return err
			}
			_, err = c.Search(ldap.NewSearchRequest(res.Entries[0].DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
				"(objectClass=user)", []string{"tokenGroups"}, nil))
			return err
		})
	}
	var bareAll, lookupAll resetRun
	pipeAll := make([]pipeRun, len(pipes))
	for r := range rounds {
		nb, np := opt.Baseline/rounds, opt.Burst/rounds
		if r == rounds-1 {
			nb, np = opt.Baseline-nb*(rounds-1), opt.Burst-np*(rounds-1)
		}
		logf("round %d/%d: (1) bare go-ldap loop, %d resets on one connection", r+1, rounds, nb)
		b, err := dcCPU(func() (resetRun, error) { return bare(nb) })
		if err != nil {
			return nil, err
		}
		bareAll = bareAll.plus(b)
		logf("round %d/%d: (1b) the same with the user lookup, %d resets", r+1, rounds, nb)
		lb, err := dcCPU(func() (resetRun, error) { return lookup(nb) })
		if err != nil {
			return nil, err
		}
		lookupAll = lookupAll.plus(lb)
		for i, p := range pipes {
			logf("round %d/%d: (3) full pipeline, LDAP pool of %d, a burst of %d commands", r+1, rounds, pools[i], np)
			var pr pipeRun
			var err error
			used := dcUsage(info, func() { pr, err = p.burst(ctx, users, np) })
			if err != nil {
				return nil, err
			}
			pr.dc = used
			pipeAll[i] = pipeAll[i].plus(pr)
		}
	}
	res.Bare = bareAll.throughput(fmt.Sprintf("bare go-ldap loop, one connection (%d rounds, alternating with (3))", rounds))
	res.Lookup = lookupAll.throughput("bare loop with the pipeline's user lookup before each write")
	for i, pr := range pipeAll {
		res.Pipelines = append(res.Pipelines, PipelineResult{PoolSize: pools[i], Throughput: pr.throughput(pools[i]), Codes: pr.codes})
	}
	return res, nil
}

// resetRun is one timed series of resets.
type resetRun struct {
	lat  []time.Duration
	wall time.Duration
	errs int
	dc   testdc.Usage
}

func runResets(n int, reset func(i int) error) resetRun {
	r := resetRun{lat: make([]time.Duration, 0, n)}
	start := time.Now()
	for i := range n {
		s := time.Now()
		if err := reset(i); err != nil {
			r.errs++
			continue
		}
		r.lat = append(r.lat, time.Since(s))
	}
	r.wall = time.Since(start)
	return r
}

func (r resetRun) plus(o resetRun) resetRun {
	return resetRun{lat: append(append([]time.Duration(nil), r.lat...), o.lat...), wall: r.wall + o.wall, errs: r.errs + o.errs, dc: r.dc.Add(o.dc)}
}

func (r resetRun) throughput(name string) Throughput {
	return Throughput{Name: name, N: len(r.lat) + r.errs, Wall: r.wall, PerSec: float64(len(r.lat)) / r.wall.Seconds(), Latency: summarise(r.lat), Errors: r.errs, DC: r.dc}
}

func createUsers(ctx context.Context, info *testdc.Info, n int) ([]dcUser, func(), error) {
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	prefix := "b" + hex.EncodeToString(rnd[:])
	c, err := testdc.Admin(ctx, info)
	if err != nil {
		return nil, func() {}, err
	}
	var users []dcUser
	cleanup := func() {
		for _, u := range users {
			_ = c.Del(ldap.NewDelRequest(u.dn, nil))
		}
		c.Close()
	}
	for i := range n {
		sam := fmt.Sprintf("%s%04d", prefix, i)
		u := dcUser{dn: "CN=" + sam + "," + info.InScopeOU, sam: sam}
		if err := testdc.CreateUser(ctx, c, testdc.UserSpec{DN: u.dn, SAM: sam, UPN: sam + "@adw.test",
			DisplayName: "Perf Tester", Password: testdc.UserPass}); err != nil {
			return users, cleanup, err
		}
		users = append(users, u)
	}
	return users, cleanup, nil
}

// pipe is the full pipeline, running: the emulator, the connector in this
// process against it and the DC, and a sender.
type pipe struct {
	client *sender.Client
	cs     *servicebus.CommandSender
	rcv    *azservicebus.Receiver
	close  func()
	built  int // commands built so far (unique passwords)
}

// startPipe starts the pipeline (integration/stack, the connector in this
// process with its log dropped) and warms it up with one command, so links
// and the DC connection pool are up before anything is timed.
func startPipe(ctx context.Context, info *testdc.Info, dir string, users []dcUser, maxPending, poolSize int) (*pipe, error) {
	prog := stack.NewProgram(fmt.Sprintf("bench-pool%d", poolSize), nil)
	p := &pipe{close: func() { _ = prog.Close() }}
	err := prog.Do(func() {
		qo := sbemu.QueueOptions{LockDuration: time.Minute, MaxDeliveryCount: 10}
		env := stack.New(prog, stack.WithDC(info), stack.WithDir(dir),
			stack.WithCommandQueue("commands", qo), stack.WithReplyQueue("results", qo))
		env.Start("bench", stack.DiscardLogs(), stack.Configure(func(c *stack.ConfigSpec) {
			c.PerUser, c.PoolSize = 1000000, poolSize
		}))
		snd := env.Sender(stack.MaxPending(maxPending+16), stack.TTL(protocol.DefaultMaxLifetime))
		if _, err := doOne(ctx, snd.Client, users[0].sam, "Dcb!Warm.Up.0001"); err != nil {
			prog.Fatalf("warm-up: %v", err)
		}
		// Replies are read by a plain azservicebus receiver and stamped on
		// arrival (the sender SDK's awaiter is not what is measured).
		rcv, err := snd.Bus.NewReceiverForQueue(env.Replies, nil)
		if err != nil {
			prog.Fatalf("%v", err)
		}
		prog.Cleanup(func() { rcv.Close(context.Background()) })
		p.client, p.cs, p.rcv = snd.Client, snd.Commands, rcv
	})
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// pipeRun is one or more timed bursts through the pipeline.
type pipeRun struct {
	lat   []time.Duration // succeeded commands, send -> verified result
	wall  time.Duration
	n     int
	codes map[protocol.ResultCode]int
	dc    testdc.Usage
}

func (r pipeRun) plus(o pipeRun) pipeRun {
	codes := map[protocol.ResultCode]int{}
	for _, m := range []map[protocol.ResultCode]int{r.codes, o.codes} {
		for c, n := range m {
			codes[c] += n
		}
	}
	return pipeRun{lat: append(append([]time.Duration(nil), r.lat...), o.lat...), wall: r.wall + o.wall, n: r.n + o.n, codes: codes, dc: r.dc.Add(o.dc)}
}

func (r pipeRun) throughput(poolSize int) Throughput {
	ok := r.codes[protocol.CodeSucceeded]
	return Throughput{Name: fmt.Sprintf("full pipeline (emulator -> connector -> DC -> reply), LDAP pool of %d", poolSize), N: r.n, Wall: r.wall,
		PerSec: float64(ok) / r.wall.Seconds(), Latency: summarise(r.lat), Errors: r.n - ok, DC: r.dc}
}

// burst sends n commands at once and times each from send to verified
// result; the wall time runs from the first send to the last result.
func (p *pipe) burst(ctx context.Context, users []dcUser, n int) (pipeRun, error) {
	// Build every command first (the sender's cost is not the connector's).
	preps := make([]*sender.Prepared, n)
	for i := range n {
		p.built++
		s := protocol.SecretFromString(fmt.Sprintf("Dcb!Burst.%07d", p.built))
		var err error
		preps[i], err = p.client.Build(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: users[p.built%len(users)].sam},
			Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "bench"}, NewPassword: s})
		s.Zero()
		if err != nil {
			return pipeRun{}, err
		}
	}
	idx := make(map[string]int, n)
	for i, pr := range preps {
		idx[pr.Command.ID] = i
	}
	lat := make([]time.Duration, n)
	codes := make([]protocol.ResultCode, n)
	errs := make([]error, n)
	sentAt := make([]time.Time, n)
	got := make([]bool, n)
	var mu sync.Mutex
	recvDone := make(chan error, 1)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Minute)
	defer rcancel()
	go func() {
		left := n
		for left > 0 {
			msgs, err := p.rcv.ReceiveMessages(rctx, 64, nil)
			if err != nil {
				recvDone <- err
				return
			}
			now := time.Now()
			for _, m := range msgs {
				_ = p.rcv.CompleteMessage(rctx, m, nil)
				if m.CorrelationID == nil {
					continue
				}
				i, ok := idx[*m.CorrelationID]
				mu.Lock()
				if !ok || got[i] {
					mu.Unlock()
					continue
				}
				got[i] = true
				lat[i] = now.Sub(sentAt[i])
				mu.Unlock()
				left--
				r, err := p.client.VerifyResult(m.Body, preps[i])
				if err != nil {
					errs[i] = err
					continue
				}
				codes[i] = r.Code
			}
		}
		recvDone <- nil
	}()
	start := time.Now()
	for i, pr := range preps {
		mu.Lock()
		sentAt[i] = time.Now()
		mu.Unlock()
		if err := p.cs.Send(ctx, pr.Envelope); err != nil {
			return pipeRun{}, fmt.Errorf("send: %w", err)
		}
	}
	if err := <-recvDone; err != nil {
		return pipeRun{}, fmt.Errorf("receive results: %w", err)
	}
	run := pipeRun{wall: time.Since(start), n: n, codes: map[protocol.ResultCode]int{}}
	for i := range n {
		if errs[i] != nil {
			continue
		}
		run.codes[codes[i]]++
		if codes[i] == protocol.CodeSucceeded {
			run.lat = append(run.lat, lat[i])
		}
	}
	return run, nil
}

func doOne(ctx context.Context, c *sender.Client, sam, pw string) (*protocol.VerifiedResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s := protocol.SecretFromString(pw)
	defer s.Zero()
	r, err := c.Do(ctx, sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: sam},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "bench"}, NewPassword: s})
	if err != nil {
		return nil, err
	}
	if r.Code != protocol.CodeSucceeded {
		return r, fmt.Errorf("result %s: %s", r.Code, r.Detail)
	}
	return r, nil
}

// dcUsage runs run and returns what the DC used meanwhile (zero when its
// usage cannot be read).
func dcUsage(info *testdc.Info, run func()) testdc.Usage {
	before, err1 := testdc.ReadUsage(info)
	run()
	after, err2 := testdc.ReadUsage(info)
	if err1 != nil || err2 != nil {
		return testdc.Usage{}
	}
	return after.Sub(before)
}
