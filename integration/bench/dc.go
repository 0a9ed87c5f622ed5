package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// DCOptions configure the DC-bound run.
type DCOptions struct {
	// Info is the running test DC (testdc.Up).
	Info *testdc.Info
	// Baseline resets for the bare loop and for the naive approach each.
	Baseline int
	// Burst commands through the full pipeline.
	Burst int
	// Users to spread the resets over (created for the run, deleted after).
	Users int
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
}

// DCResult is the DC-bound comparison.
type DCResult struct {
	Bare, Naive, Pipeline Throughput
	// Codes of the pipeline's results.
	Codes map[protocol.ResultCode]int
}

// VsBare is (3)/(1); VsNaive is (3)/(2).
func (r *DCResult) VsBare() float64  { return r.Pipeline.PerSec / r.Bare.PerSec }
func (r *DCResult) VsNaive() float64 { return r.Pipeline.PerSec / r.Naive.PerSec }

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

	// (1) runs in two halves, before (2) and after (3), so a DC whose
	// speed drifts during the run (its database grows, other work comes
	// and goes) is compared with the pipeline on both sides.
	bare := func(n int) (resetRun, error) {
		c, err := testdc.Bind(ctx, info, info.ServiceDN, info.ServicePass)
		if err != nil {
			return resetRun{}, err
		}
		defer c.Close()
		return runResets(n, func(i int) error {
			m := ldap.NewModifyRequest(users[i%len(users)].dn, nil)
			m.Replace("unicodePwd", []string{testdc.EncodePassword(pw())})
			return c.Modify(m)
		}), nil
	}
	first := opt.Baseline / 2
	logf("(1) bare go-ldap loop, first half: %d resets on one connection", first)
	bare1, err := bare(first)
	if err != nil {
		return nil, err
	}

	logf("(2) naive: %d x (dial + bind + modify + close)", opt.Baseline)
	res.Naive = runResets(opt.Baseline, func(i int) error {
		c, err := testdc.Bind(ctx, info, info.ServiceDN, info.ServicePass)
		if err != nil {
			return err
		}
		defer c.Close()
		m := ldap.NewModifyRequest(users[i%len(users)].dn, nil)
		m.Replace("unicodePwd", []string{testdc.EncodePassword(pw())})
		return c.Modify(m)
	}).throughput("naive dial+bind+modify+close")

	logf("(3) full pipeline: %d commands", opt.Burst)
	res.Pipeline, res.Codes, err = pipeline(ctx, info, dir, users, opt.Burst)
	if err != nil {
		return nil, err
	}

	logf("(1) bare go-ldap loop, second half: %d resets", opt.Baseline-first)
	bare2, err := bare(opt.Baseline - first)
	if err != nil {
		return nil, err
	}
	res.Bare = bare1.plus(bare2).throughput("bare go-ldap loop, one connection (half before (2), half after (3))")
	return res, nil
}

// resetRun is one timed series of resets.
type resetRun struct {
	lat  []time.Duration
	wall time.Duration
	errs int
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
	return resetRun{lat: append(append([]time.Duration(nil), r.lat...), o.lat...), wall: r.wall + o.wall, errs: r.errs + o.errs}
}

func (r resetRun) throughput(name string) Throughput {
	return Throughput{Name: name, N: len(r.lat) + r.errs, Wall: r.wall, PerSec: float64(len(r.lat)) / r.wall.Seconds(), Latency: summarise(r.lat), Errors: r.errs}
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

// pipeline runs the connector in this process against the emulator and the
// DC, sends burst commands at once through the sender SDK over Service
// Bus, and times each from send to verified result.
func pipeline(ctx context.Context, info *testdc.Info, dir string, users []dcUser, burst int) (Throughput, map[protocol.ResultCode]int, error) {
	emu, err := sbemu.StartProcess(ctx, sbemu.Options{})
	if err != nil {
		return Throughput{}, nil, err
	}
	defer emu.Close()
	qo := sbemu.QueueOptions{LockDuration: time.Minute, MaxDeliveryCount: 10}
	if err := stack.Queues(ctx, emu, stack.Queue{Name: "commands", Options: qo}, stack.Queue{Name: "results", Options: qo}); err != nil {
		return Throughput{}, nil, err
	}
	k, err := stack.WriteKeys(dir)
	if err != nil {
		return Throughput{}, nil, err
	}
	if err := stack.WriteSecrets(dir, info.ServicePass, emu.ConnectionString()); err != nil {
		return Throughput{}, nil, err
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	spec := stack.DCConfig(info, dir)
	spec.MinLength = 12
	spec.Queue = "commands"
	spec.PerUser = 1000000
	spec.HTTPListen = "127.0.0.1:0"
	if err := spec.WriteFile(p("config.yaml")); err != nil {
		return Throughput{}, nil, err
	}
	cfg, err := config.Load(p("config.yaml"), os.Getenv)
	if err != nil {
		return Throughput{}, nil, err
	}
	a, err := app.Build(ctx, cfg, app.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Throughput{}, nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		<-done
		a.Close(context.Background())
	}()

	snd, err := stack.NewSender(stack.SenderOptions{ConnectionString: emu.ConnectionString(), Queue: "commands", ReplyQueue: "results",
		MaxPending: burst + 16, Keys: k, TTL: protocol.DefaultMaxLifetime})
	if err != nil {
		return Throughput{}, nil, err
	}
	defer snd.Close(context.Background())
	client, cs, sb := snd.Client, snd.Commands, snd.Bus
	// Warm-up: one command so links and the DC connection pool are up.
	if _, err := doOne(ctx, client, users[0].sam, "Dcb!Warm.Up.0001"); err != nil {
		return Throughput{}, nil, fmt.Errorf("warm-up: %w", err)
	}

	// Build every command first (the sender's cost is not the connector's).
	preps := make([]*sender.Prepared, burst)
	for i := range burst {
		s := protocol.SecretFromString(fmt.Sprintf("Dcb!Burst.%07d", i))
		preps[i], err = client.Build(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: users[i%len(users)].sam},
			Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "bench"}, NewPassword: s})
		s.Zero()
		if err != nil {
			return Throughput{}, nil, err
		}
	}
	// Replies are read by a plain azservicebus receiver and stamped on
	// arrival (the sender SDK's awaiter is not what is measured).
	idx := make(map[string]int, burst)
	for i, pr := range preps {
		idx[pr.Command.ID] = i
	}
	rcv, err := sb.NewReceiverForQueue("results", nil)
	if err != nil {
		return Throughput{}, nil, err
	}
	defer rcv.Close(context.Background())
	lat := make([]time.Duration, burst)
	codes := make([]protocol.ResultCode, burst)
	errs := make([]error, burst)
	sentAt := make([]time.Time, burst)
	got := make([]bool, burst)
	var mu sync.Mutex
	recvDone := make(chan error, 1)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Minute)
	defer rcancel()
	go func() {
		left := burst
		for left > 0 {
			msgs, err := rcv.ReceiveMessages(rctx, 64, nil)
			if err != nil {
				recvDone <- err
				return
			}
			now := time.Now()
			for _, m := range msgs {
				_ = rcv.CompleteMessage(rctx, m, nil)
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
				r, err := client.VerifyResult(m.Body, *m.CorrelationID)
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
		if err := cs.Send(ctx, pr.Envelope); err != nil {
			return Throughput{}, nil, fmt.Errorf("send: %w", err)
		}
	}
	if err := <-recvDone; err != nil {
		return Throughput{}, nil, fmt.Errorf("receive results: %w", err)
	}
	wall := time.Since(start)
	cm := map[protocol.ResultCode]int{}
	okLat := make([]time.Duration, 0, burst)
	nerr := 0
	for i := range burst {
		if errs[i] != nil {
			nerr++
			continue
		}
		cm[codes[i]]++
		if codes[i] == protocol.CodeSucceeded {
			okLat = append(okLat, lat[i])
		}
	}
	tp := Throughput{Name: "full pipeline (emulator -> connector -> DC -> reply)", N: burst, Wall: wall,
		PerSec: float64(cm[protocol.CodeSucceeded]) / wall.Seconds(), Latency: summarise(okLat), Errors: burst - cm[protocol.CodeSucceeded]}
	return tp, cm, nil
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
