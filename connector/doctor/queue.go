package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// QueueClientConfig is the queue section's servicebus configuration
// (config.Queue.ServiceBus, as connector/app uses it), with few retries so
// the doctor answers quickly.
func QueueClientConfig(q config.Queue) servicebus.Config {
	c := q.ServiceBus()
	c.RetryOptions = azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: time.Second}
	return c
}

// CheckQueue opens a receiver on the queue and peeks one message (a peek
// takes no lock and changes nothing), within timeout.
func CheckQueue(ctx context.Context, q config.Queue, timeout time.Duration) Check {
	where := queueEndpoint(q)
	cfg := QueueClientConfig(q)
	dials := servicebus.NewDialTracker()
	cfg.Dials = dials
	client, err := servicebus.NewClient(cfg)
	if err != nil {
		return QueueResult(err, q, where)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		client.Close(cctx)
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := client.NewReceiverForQueue(q.Name, nil)
	if err != nil {
		return QueueResult(dials.Explain(err), q, where)
	}
	defer r.Close(context.Background())
	_, err = r.PeekMessages(ctx, 1, nil)
	return QueueResult(dials.Explain(err), q, where)
}

// QueueResult explains the outcome of the peek.
func QueueResult(err error, q config.Queue, where string) Check {
	const name = "queue"
	target := fmt.Sprintf("%s/%s", where, q.Name)
	if err == nil {
		return ok(name, target, "reachable and authorised: a receiver opened and peeked (auth %s, transport %s)", orDefault(q.Auth, "connection_string"), orDefault(q.Transport, "amqp"))
	}
	err = servicebus.Classify(err)
	switch {
	case errors.Is(err, servicebus.ErrConfig):
		return fail(name, target, fmt.Sprintf("the queue settings are invalid: %v", err), "correct the queue section of the configuration")
	case proxy.Is(err):
		return fail(name, target, fmt.Sprintf("the proxy stopped the connection: %v", err), "see the proxy check above")
	case errors.Is(err, servicebus.ErrUnauthorized):
		fix := "put the right connection string (with a key allowed to Listen on the queue; Azure portal > Service Bus namespace > Shared access policies) in queue.connection_string_file or queue.connection_string_env"
		if a := q.Auth; a != "" && a != string(servicebus.AuthConnectionString) {
			fix = fmt.Sprintf("give the identity (auth %s, client_id %q) the role \"Azure Service Bus Data Receiver\" (and Data Sender for replies) on the namespace or queue, and check tenant_id/client_id/secret", a, q.ClientID)
		}
		return fail(name, target, "unauthorized: Service Bus refused the credentials (wrong SAS key or key name, or the identity lacks a role)", fix)
	case errors.Is(err, servicebus.ErrNotFound) || amqpNotFound(err):
		return fail(name, target, fmt.Sprintf("the queue %q does not exist in this namespace", q.Name),
			fmt.Sprintf("create the queue %q (Azure portal, or `az servicebus queue create --name %s ...`), or correct queue.name", q.Name, q.Name))
	case errors.Is(err, context.DeadlineExceeded) && q.Transport == string(servicebus.TransportWebSockets):
		return fail(name, target, "no answer in time: the namespace is unreachable from here",
			"allow outbound TCP 443 to the namespace, or set queue.proxy (see the proxy check above)")
	case errors.Is(err, context.DeadlineExceeded):
		return fail(name, target, "no answer in time: the namespace is unreachable from here",
			"allow outbound TCP 5671 (AMQP) to the namespace, or set queue.transport: websockets (TCP 443, with queue.proxy if a proxy is required)")
	case q.Transport == string(servicebus.TransportWebSockets):
		return fail(name, target, fmt.Sprintf("cannot reach the queue: %v", err),
			"check the namespace (queue.namespace or the connection string), DNS, and outbound TCP 443 or queue.proxy")
	}
	return fail(name, target, fmt.Sprintf("cannot reach the queue: %v", err),
		"check the namespace in the connection string, DNS, and outbound TCP 5671 (or queue.transport: websockets on 443)")
}

// amqpNotFound reports an AMQP amqp:not-found refusal. The SDK maps it to
// its CodeNotFound only for management RPCs, not when the receiver link
// attach is refused, which is how a missing queue shows up here.
func amqpNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Condition == amqp.ErrCondNotFound
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// queueEndpoint names the namespace without any secret: the configured
// namespace, or the host of the connection string's Endpoint.
func queueEndpoint(q config.Queue) string {
	if h := q.ServiceBus().NamespaceHost(); h != "" {
		return h
	}
	return "service bus"
}
