package app

import (
	"context"
	"os"

	"github.com/adwriteback/adwriteback/connector/presence"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// buildPresence builds the heartbeat publisher when status.queue is set:
// signed with the first connector key, sent to the status queue through
// the connector's Service Bus client, reading what /readyz reads.
func (a *App) buildPresence(deps Deps) error {
	sc := a.Cfg.Status
	if sc.Queue == "" {
		return nil
	}
	st, err := servicebus.NewStatusSender(a.sbClient, sc.Queue)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, a.quiet("status sender", func() error { return st.Close(context.Background()) }))
	a.presence, err = presence.New(presence.Config{
		Signer: a.Keys[0].SigningKey(), Instance: instanceName(sc.Instance), Version: deps.Version,
		Interval: sc.Interval, Snapshot: a.Snapshot, Sender: statusSender{st}, Clock: deps.Clock, Logger: deps.Logger,
	})
	return err
}

// instanceName is status.instance, or the host name's first label.
func instanceName(configured string) string {
	if configured != "" {
		return configured
	}
	host, _ := os.Hostname()
	return presence.DefaultInstance(host)
}

// heartbeat runs the publisher until ctx ends; its last heartbeat
// (stopping) goes out before Run returns, so before Close closes the
// Service Bus client.
func (a *App) heartbeat(ctx context.Context) {
	if a.presence != nil {
		a.presence.Run(ctx)
	}
}
