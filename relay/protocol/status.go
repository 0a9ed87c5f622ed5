package protocol

import (
	"fmt"
	"time"
)

// TypeStatus is the envelope type of a connector's heartbeat (§12 of
// PROTOCOL.md). Its signing label is "adwriteback-v1-status", like the
// others (SigningInput).
const TypeStatus = "status"

// StatusState says whether a connector is running or shutting down.
type StatusState string

// The states of a connector in its heartbeat.
const (
	// StatusRunning: the connector runs (whether it takes work is
	// Status.TakingWork).
	StatusRunning StatusState = "running"
	// StatusStopping: the connector's last heartbeat before a clean stop;
	// it takes no more work.
	StatusStopping StatusState = "stopping"
)

// The states of the queue link and the journal in a heartbeat.
const (
	QueueUp           = "up"
	QueueDown         = "down"
	JournalOK         = "ok"
	JournalUnwritable = "unwritable"
)

// Limits of a heartbeat.
const (
	maxStatusDomains  = 64
	maxStatusDCs      = 1024 // per domain, all states together
	maxStatusVersion  = 64
	maxStatusInterval = 3600 // seconds
)

// Status is the signed payload of a status envelope: a connector's
// heartbeat. It names no DC, host or account: per domain it counts DCs by
// state.
type Status struct {
	// V is the protocol version: status messages exist from version 2.
	V int `json:"v"`
	// ConnectorKID is the kid of the connector key that signs the
	// heartbeat (the first of keys.connector): it equals the envelope's kid.
	ConnectorKID string `json:"connectorKid"`
	// Instance names the connector instance, as its admin configured it
	// (status.instance): several instances may serve one queue.
	Instance string `json:"instance"`
	// Version is the connector's software version.
	Version string `json:"version"`
	// StartedAt is when the connector process started.
	StartedAt Timestamp `json:"startedAt"`
	// SentAt is when this heartbeat was built; its age is judged from it.
	SentAt Timestamp `json:"sentAt"`
	// State is running, or stopping in the last heartbeat of a clean stop.
	State StatusState `json:"state"`
	// TakingWork is whether the connector takes commands now: running and
	// ready (what its /readyz says).
	TakingWork bool `json:"takingWork"`
	// Queue is the command queue's receive link.
	Queue QueueStatus `json:"queue"`
	// Journal is the journal's state.
	Journal JournalStatus `json:"journal"`
	// Domains counts each AD domain's DCs by state.
	Domains []DomainStatus `json:"domains"`
	// Interval is the heartbeat interval in seconds: a reader treats the
	// connector as gone when no heartbeat is younger than 2 intervals.
	Interval int `json:"interval"`
}

// QueueStatus is the command queue's receive link: "up" or "down".
type QueueStatus struct {
	State string `json:"state"`
}

// JournalStatus is the journal's state: "ok" or "unwritable".
type JournalStatus struct {
	State string `json:"state"`
}

// DomainStatus counts one AD domain's DCs by their last probe.
type DomainStatus struct {
	// Name is the domain's DNS name, as configured (domains[].name).
	Name       string `json:"name"`
	DCsUp      int    `json:"dcsUp"`
	DCsDown    int    `json:"dcsDown"`
	DCsUnknown int    `json:"dcsUnknown"`
}

var statusSchema = schema{
	"": keys("v", "connectorKid", "instance", "version", "startedAt", "sentAt", "state",
		"takingWork", "queue", "journal", "domains", "interval"),
	"queue":   keys("state"),
	"journal": keys("state"),
	"domains": keys("name", "dcsUp", "dcsDown", "dcsUnknown"),
}

// IntervalDuration is Interval as a duration.
func (s *Status) IntervalDuration() time.Duration { return time.Duration(s.Interval) * time.Second }

// StaleAt is when the heartbeat stops counting: SentAt plus 2 intervals.
func (s *Status) StaleAt() time.Time { return s.SentAt.Add(2 * s.IntervalDuration()) }

// Validate checks every field of the heartbeat.
func (s *Status) Validate() error {
	if s.V != Version {
		return newError(ErrUnsupportedVersion, fmt.Sprintf("status v=%d (status exists in v%d only)", s.V, Version), nil)
	}
	for _, check := range []func() error{s.validIdentity, s.validTimes, s.validStates, s.validDomains} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Status) validIdentity() error {
	if err := validKID("connectorKid", s.ConnectorKID); err != nil {
		return err
	}
	if err := validKID("instance", s.Instance); err != nil {
		return err
	}
	return validText("version", s.Version, maxStatusVersion)
}

func (s *Status) validTimes() error {
	switch {
	case s.StartedAt.IsZero():
		return invalid("startedAt", "required")
	case s.SentAt.IsZero():
		return invalid("sentAt", "required")
	case s.SentAt.Before(s.StartedAt.Time):
		return invalid("sentAt", "must not be before startedAt")
	case s.Interval < 1 || s.Interval > maxStatusInterval:
		return invalid("interval", fmt.Sprintf("must be 1 to %d seconds", maxStatusInterval))
	}
	return nil
}

func (s *Status) validStates() error {
	switch {
	case s.State != StatusRunning && s.State != StatusStopping:
		return invalid("state", "must be running or stopping")
	case s.State == StatusStopping && s.TakingWork:
		return invalid("takingWork", "must be false when stopping")
	case s.Queue.State != QueueUp && s.Queue.State != QueueDown:
		return invalid("queue.state", "must be up or down")
	case s.Journal.State != JournalOK && s.Journal.State != JournalUnwritable:
		return invalid("journal.state", "must be ok or unwritable")
	}
	return nil
}

func (s *Status) validDomains() error {
	if len(s.Domains) == 0 || len(s.Domains) > maxStatusDomains {
		return invalid("domains", fmt.Sprintf("must list 1 to %d domains", maxStatusDomains))
	}
	seen := make(map[string]bool, len(s.Domains))
	for i, d := range s.Domains {
		at := fmt.Sprintf("domains[%d]", i)
		if d.Name == "" || !isDNSName(d.Name) {
			return invalid(at+".name", "must be a DNS name")
		}
		if seen[d.Name] {
			return invalid(at+".name", "listed twice")
		}
		seen[d.Name] = true
		if d.DCsUp < 0 || d.DCsDown < 0 || d.DCsUnknown < 0 {
			return invalid(at, "counts must not be negative")
		}
		if d.DCsUp+d.DCsDown+d.DCsUnknown > maxStatusDCs {
			return invalid(at, fmt.Sprintf("more than %d DCs", maxStatusDCs))
		}
	}
	return nil
}

// SignStatus validates s and returns its signed envelope. k must be the
// key s.ConnectorKID names.
func SignStatus(s *Status, k SigningKey) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if k.KID != s.ConnectorKID {
		return nil, invalid("connectorKid", "must be the kid of the signing key")
	}
	payload, err := encodeJSON(s)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode status: %w", err)
	}
	return signEnvelope(s.V, TypeStatus, payload, k)
}

// VerifiedStatus is a heartbeat whose signature and fields have been
// checked (not its age: the reader judges that against its clock).
type VerifiedStatus struct {
	Status
	// SignerKID is the connector key id that signed it (= ConnectorKID).
	SignerKID string
}

// VerifyStatus checks a status envelope's size, syntax, version (2 only),
// signature (by the connector key its kid names) and every field, and that
// the payload's connectorKid is the signer's kid.
func VerifyStatus(raw []byte, keys VerifyKeys) (*VerifiedStatus, error) {
	env, err := verifyEnvelope(raw, TypeStatus, keys)
	if err != nil {
		return nil, err
	}
	if env.v != Version {
		return nil, newError(ErrUnsupportedVersion, fmt.Sprintf("status v=%d (status exists in v%d only)", env.v, Version), nil)
	}
	v := &VerifiedStatus{SignerKID: env.kid}
	if err := decodeStatus(env.payload, &v.Status); err != nil {
		return nil, err
	}
	if v.ConnectorKID != env.kid {
		return nil, invalid("connectorKid", "differs from the envelope's kid")
	}
	return v, nil
}

// ParseStatus strictly decodes and validates a status payload, without
// any signature. For tools and tests.
func ParseStatus(payload []byte) (*Status, error) {
	var s Status
	if err := decodeStatus(payload, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// statusWire decodes a Status with takingWork as a pointer, so that its
// absence is told from false: the outer field shadows the embedded one.
type statusWire struct {
	*Status
	TakingWork *bool `json:"takingWork"`
}

func decodeStatus(payload []byte, s *Status) error {
	w := statusWire{Status: s}
	if err := strictDecode(payload, statusSchema, &w); err != nil {
		return err
	}
	if w.TakingWork == nil {
		return invalid("takingWork", "required")
	}
	s.TakingWork = *w.TakingWork
	return s.Validate()
}
