package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// ConnectorOptions configure the connector-bound run.
type ConnectorOptions struct {
	// N commands in the burst (reset, each with a sealed password).
	N int
	// Workers handle deliveries at once (as the Service Bus source's
	// concurrency would); the engine's AD concurrency cap is set to match.
	Workers int
	// Users the commands are spread over (the per-user rate limit is a
	// journal write per command; its limit is set high).
	Users int
	// Dir holds the journal, audit log and pre-built commands; a temp dir
	// if empty.
	Dir string
	// NoSync turns the journal's fsync off (to show what durability costs).
	NoSync bool
	// Procs is GOMAXPROCS during the measured phase (default 1).
	Procs int
}

// ConnectorResult is what the connector-bound run measured.
type ConnectorResult struct {
	N, Workers, Procs int
	NoSync            bool
	Wall, CPU         time.Duration
	PerSec            float64       // commands/s on Procs cores
	CPUPerCmd         time.Duration // process CPU (user+sys) per command
	Latency           Latencies     // delivery in -> result sent (what the sender waits for)
	Settled           Latencies     // delivery in -> settled decision out
	PeakRSSKB         int64
	PeakRSSReset      bool // VmHWM was reset before the measured phase
	// EndAnonKB and EndFileKB are the resident set at the end of the burst,
	// anonymous and file-backed (the binary's code, the journal's mapped
	// pages); EndHeapKB is
	// the Go heap in use then.
	EndAnonKB, EndFileKB, EndHeapKB int64
	Succeeded                       int // journal says "succeeded"
	// JournalBytes is the journal file's size after the burst (bbolt maps
	// it into memory, so its touched pages count in RSS).
	JournalBytes int64
	// Journal counts the fsync'd transactions and the writes they carried.
	Journal journal.Stats
	// Crypto floor: verify + open + sign per command, one goroutine.
	CryptoN      int
	CryptoPerCmd time.Duration
	CryptoPerSec float64
}

// workDir is dir, or a new temporary directory that cleanup removes.
func workDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "adwriteback-bench-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

// instantDir is an engine.Directory answering at once from memory.
type instantDir struct {
	users  map[string]*ldapx.User
	policy *ldapx.Policy
	resets atomic.Int64
}

var _ engine.Directory = (*instantDir)(nil)

func newInstantDir(n int) *instantDir {
	d := &instantDir{users: make(map[string]*ldapx.User, n), policy: &ldapx.Policy{
		MinLength: 7, Complexity: true, HistoryLength: 24, MaxAge: 42 * 24 * time.Hour, ReadAt: time.Now(),
	}}
	set := time.Now().Add(-48 * time.Hour)
	for i := range n {
		sam := benchSAM(i)
		d.users[sam] = &ldapx.User{
			DN: "CN=" + sam + ",OU=Managed,DC=bench,DC=test", ObjectGUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			SAMAccountName: sam, UserPrincipalName: sam + "@bench.test", DisplayName: "Perf Tester",
			UserAccountControl: 512, PwdLastSet: set, DC: "ldaps://instant.bench.test:636",
			SID: fmt.Sprintf("S-1-5-21-1-2-3-%d", 1000+i),
		}
	}
	return d
}

func benchSAM(i int) string { return fmt.Sprintf("bench%05d", i) }

func (d *instantDir) FindUser(_ context.Context, ref ldapx.UserRef) (*ldapx.User, error) {
	if u, ok := d.users[ref.Value]; ok {
		c := *u
		return &c, nil
	}
	return nil, &ldapx.Error{Kind: ldapx.KindNotFound}
}

func (d *instantDir) ReadUser(_ context.Context, dn string) (*ldapx.User, error) {
	for _, u := range d.users {
		if u.DN == dn {
			c := *u
			return &c, nil
		}
	}
	return nil, &ldapx.Error{Kind: ldapx.KindNoSuchObject}
}

func (d *instantDir) TokenGroups(context.Context, string) ([]string, error) {
	return []string{"S-1-5-21-1-2-3-513"}, nil
}
func (d *instantDir) GroupSID(context.Context, string) (string, error) {
	return "", &ldapx.Error{Kind: ldapx.KindNoSuchObject}
}
func (d *instantDir) EffectivePolicy(context.Context, *ldapx.User) (*ldapx.Policy, error) {
	return d.policy, nil
}
func (d *instantDir) Reset(context.Context, string, string, ldapx.ResetOptions) (ldapx.Applied, error) {
	d.resets.Add(1)
	return ldapx.Applied{DC: "ldaps://instant.bench.test:636"}, nil
}
func (d *instantDir) Change(context.Context, string, string, string) (ldapx.Applied, error) {
	return ldapx.Applied{DC: "ldaps://instant.bench.test:636"}, nil
}
func (d *instantDir) Unlock(context.Context, string) (ldapx.Applied, error) {
	return ldapx.Applied{DC: "ldaps://instant.bench.test:636"}, nil
}

// nopReporter drops results (the reply queue is not part of this run),
// noting when each was sent in the *time.Time its context carries.
type nopReporter struct{ n atomic.Int64 }

type sentAtKey struct{}

func (r *nopReporter) Report(ctx context.Context, _ *transport.Delivery, _ string, _ []byte) error {
	r.n.Add(1)
	if at, ok := ctx.Value(sentAtKey{}).(*time.Time); ok {
		*at = time.Now()
	}
	return nil
}

// benchKeys are one run's connector and sender keys.
type benchKeys struct {
	conn   *keys.ConnectorPrivate
	send   *keys.SenderPrivate
	client *sender.Client
}

func newBenchKeys() (*benchKeys, error) {
	now := time.Now()
	ck, err := keys.GenerateConnector(keys.DefaultKEM, now)
	if err != nil {
		return nil, err
	}
	sk, err := keys.GenerateSender(now)
	if err != nil {
		return nil, err
	}
	cfg, err := sender.ConfigFromKeys(sk, ck.Public())
	if err != nil {
		return nil, err
	}
	cfg.TTL = protocol.DefaultMaxLifetime
	c, err := sender.New(cfg)
	if err != nil {
		return nil, err
	}
	return &benchKeys{conn: ck, send: sk, client: c}, nil
}

// buildCommands writes n sealed, signed reset commands to path (each a
// 4-byte length, the id, a 4-byte length, the body), built on every core.
func buildCommands(bk *benchKeys, path string, n, users int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	type item struct{ id, body []byte }
	out := make(chan item, 256)
	jobs := make(chan int, 256)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				pw := protocol.SecretFromString(fmt.Sprintf("Bench!Pass.%07d", i))
				p, err := bk.client.Build(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: benchSAM(i % users)},
					Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "bench"}, NewPassword: pw})
				pw.Zero()
				if err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				out <- item{[]byte(p.Command.ID), p.Envelope.Body}
			}
		}()
	}
	go func() {
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(out)
	}()
	var hdr [4]byte
	for it := range out {
		for _, b := range [][]byte{it.id, it.body} {
			binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
			w.Write(hdr[:])
			w.Write(b)
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return w.Flush()
}

// readCommands streams the file back.
func readCommands(path string, fn func(id string, body []byte) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [4]byte
	read := func() ([]byte, error) {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		_, err := io.ReadFull(r, b)
		return b, err
	}
	for {
		id, err := read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		body, err := read()
		if err != nil {
			return err
		}
		if !fn(string(id), body) {
			return nil
		}
	}
}

// ConnectorBound runs a burst of opt.N reset commands through the real
// engine (decoding, signature check, replay claim, HPKE open, scope and
// rate-limit checks, policy pre-check, durable journal writes, result
// signing, audit) with an instant directory and a reporter that drops
// results, on opt.Procs cores.
func ConnectorBound(ctx context.Context, opt ConnectorOptions) (*ConnectorResult, error) {
	if opt.N <= 0 {
		opt.N = 10000
	}
	if opt.Workers <= 0 {
		opt.Workers = 32
	}
	if opt.Users <= 0 {
		opt.Users = 1000
	}
	if opt.Procs <= 0 {
		opt.Procs = 1
	}
	dir, cleanup, err := workDir(opt.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	bk, err := newBenchKeys()
	if err != nil {
		return nil, err
	}
	cmds := filepath.Join(dir, "commands.bin")
	if err := buildCommands(bk, cmds, opt.N, opt.Users); err != nil {
		return nil, fmt.Errorf("build commands: %w", err)
	}
	defer os.Remove(cmds)

	openKeys, err := keys.OpenKeysOf(bk.conn)
	if err != nil {
		return nil, err
	}
	verify, err := keys.VerifyKeysOf(bk.send.Public())
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{NoSync: opt.NoSync})
	if err != nil {
		return nil, err
	}
	defer j.Close()
	al, err := audit.OpenFile(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		return nil, err
	}
	defer al.Close()
	rep := &nopReporter{}
	dirFake := newInstantDir(opt.Users)
	eng, err := engine.New(engine.Config{
		Receiver: &protocol.Receiver{Senders: verify, Keys: openKeys},
		Signer:   bk.conn.SigningKey(), Journal: j, Reporter: rep, Audit: al,
		Domains: []*engine.Domain{{Name: "bench.test", Dir: dirFake,
			ScopeOUs: []string{"OU=Managed,DC=bench,DC=test"}, OrgMinLength: 12}},
		RateLimit: 1 << 30, RateWindow: 24 * time.Hour, Concurrency: opt.Workers, MaxAttempts: 5, WriteWindow: 35 * time.Second,
	})
	if err != nil {
		return nil, err
	}

	// The measured phase: opt.Procs cores, reading commands as a queue would.
	runtime.GC()
	prev := runtime.GOMAXPROCS(opt.Procs)
	defer runtime.GOMAXPROCS(prev)
	res := &ConnectorResult{N: opt.N, Workers: opt.Workers, Procs: opt.Procs, NoSync: opt.NoSync}
	res.PeakRSSReset = resetPeakRSS()
	type job struct {
		id   string
		body []byte
	}
	jobs := make(chan job, opt.Workers)
	lat := make([]time.Duration, opt.N)
	settled := make([]time.Duration, opt.N)
	var next atomic.Int64
	var bad atomic.Int64
	var wg sync.WaitGroup
	cpu0, t0 := cpuTime(), time.Now()
	for range opt.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range jobs {
				var sent time.Time
				hctx := context.WithValue(ctx, sentAtKey{}, &sent)
				s := time.Now()
				d := eng.Handle(hctx, &transport.Delivery{MessageID: jb.id, Body: jb.body, DeliveryCount: 1, ReplyTo: "results"})
				d.Report(transport.Settlement{Action: d.Action}) // as a source would after settling: writes the audit record
				el := time.Since(s)
				if d.Action != transport.ActionComplete || sent.IsZero() {
					bad.Add(1)
				}
				i := next.Add(1) - 1
				lat[i], settled[i] = sent.Sub(s), el
			}
		}()
	}
	rerr := readCommands(cmds, func(id string, body []byte) bool {
		select {
		case jobs <- job{id, body}:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(jobs)
	wg.Wait()
	res.Wall, res.CPU = time.Since(t0), cpuTime()-cpu0
	res.PeakRSSKB = peakRSSKB()
	res.EndAnonKB, res.EndFileKB = rssNowKB()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.EndHeapKB = int64(ms.HeapInuse >> 10)
	runtime.GOMAXPROCS(prev)
	res.Journal = j.Stats()
	if st, err := os.Stat(filepath.Join(dir, "journal.db")); err == nil {
		res.JournalBytes = st.Size()
	}
	if rerr != nil {
		return nil, rerr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := int(next.Load())
	res.Latency, res.Settled = summarise(lat[:n]), summarise(settled[:n])
	res.PerSec = float64(n) / res.Wall.Seconds()
	res.CPUPerCmd = res.CPU / time.Duration(max(n, 1))
	if b := bad.Load(); b > 0 {
		return nil, fmt.Errorf("connector bench: %d of %d deliveries were not completed", b, n)
	}
	// Check every outcome from the journal, outside the measured phase.
	firstBad := ""
	if err := readCommands(cmds, func(id string, _ []byte) bool {
		code := "missing"
		if e, err := j.Get(ctx, id); err == nil {
			code = e.Code
		}
		if code == string(protocol.CodeSucceeded) {
			res.Succeeded++
		} else if firstBad == "" {
			if e, err := j.Get(ctx, id); err == nil {
				firstBad = code + ": " + string(e.Result)
			} else {
				firstBad = code
			}
		}
		return true
	}); err != nil {
		return nil, err
	}
	if res.Succeeded != n || dirFake.resets.Load() != int64(n) {
		return nil, fmt.Errorf("connector bench: %d of %d succeeded, %d resets applied (first other outcome: %.300s)", res.Succeeded, n, dirFake.resets.Load(), firstBad)
	}

	// The floor: the crypto alone for a sample of the same commands.
	if err := cryptoFloor(ctx, res, cmds, verify, openKeys, bk.conn.SigningKey(), opt.Procs); err != nil {
		return nil, err
	}
	return res, nil
}

// cryptoFloor times signature check + HPKE open + result signing, one
// command after another on one goroutine.
func cryptoFloor(ctx context.Context, res *ConnectorResult, cmds string, verify protocol.VerifyKeys, open protocol.OpenKeys, signer protocol.SigningKey, procs int) error {
	limit := min(res.N, 5000)
	var bodies [][]byte
	if err := readCommands(cmds, func(_ string, body []byte) bool {
		bodies = append(bodies, body)
		return len(bodies) < limit
	}); err != nil {
		return err
	}
	prev := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(prev)
	start := time.Now()
	for _, b := range bodies {
		if err := ctx.Err(); err != nil {
			return err
		}
		vc, err := protocol.VerifyCommand(b, verify)
		if err != nil {
			return err
		}
		sec, err := vc.Open(open)
		if err != nil {
			return err
		}
		sec.Zero()
		now := time.Now()
		if _, err := protocol.SignResult(&protocol.Result{V: protocol.Version, CommandID: vc.ID,
			CommandDigest: protocol.DigestString(vc.Digest), Code: protocol.CodeSucceeded,
			Message: protocol.CodeSucceeded.DefaultMessage(), ReceivedAt: protocol.At(now), CompletedAt: protocol.At(now)}, signer); err != nil {
			return err
		}
	}
	el := time.Since(start)
	res.CryptoN = len(bodies)
	res.CryptoPerCmd = el / time.Duration(max(len(bodies), 1))
	res.CryptoPerSec = float64(len(bodies)) / el.Seconds()
	return nil
}
