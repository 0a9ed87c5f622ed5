package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	return CheckQueues(ctx, q, "", timeout)[0]
}

// CheckQueues proves the roles the connector needs by using them, on one
// connection: Listen on the command queue by opening a receiver and
// peeking one message (a peek takes no lock, consumes nothing and settles
// nothing), and, when replyQueue is not "", Send on the reply queue by
// attaching a sender link (Sender.NewMessageBatch attaches the link to
// learn the queue's maximum message size, and Service Bus checks the Send
// right on attach) without sending anything. It returns the "queue" check
// and, with a reply queue, the "reply queue" check.
func CheckQueues(ctx context.Context, q config.Queue, replyQueue string, timeout time.Duration) []Check {
	where := queueEndpoint(q)
	cfg := QueueClientConfig(q)
	dials := servicebus.NewDialTracker()
	cfg.Dials = dials
	client, err := servicebus.NewClient(cfg)
	if err != nil {
		out := []Check{QueueResult(err, q, where)}
		if replyQueue != "" {
			out = append(out, skip("reply queue", where+"/"+replyQueue, "no client (see the queue check)"))
		}
		return out
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		client.Close(cctx)
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := []Check{QueueResult(dials.Explain(peek(ctx, client, q.Name)), q, where)}
	if replyQueue == "" {
		return out
	}
	s, err := client.NewSender(replyQueue, nil)
	if err == nil {
		defer s.Close(context.Background())
		_, err = s.NewMessageBatch(ctx, nil)
	}
	return append(out, ReplyQueueResult(dials.Explain(err), q, where, replyQueue))
}

// peek opens a receiver on queue and peeks one message.
func peek(ctx context.Context, client *azservicebus.Client, queue string) error {
	r, err := client.NewReceiverForQueue(queue, nil)
	if err != nil {
		return err
	}
	defer r.Close(context.Background())
	_, err = r.PeekMessages(ctx, 1, nil)
	return err
}

// ReplyQueueResult explains the outcome of attaching a sender to the reply
// queue.
func ReplyQueueResult(err error, q config.Queue, where, replyQueue string) Check {
	const name = "reply queue"
	target := fmt.Sprintf("%s/%s", where, replyQueue)
	if err == nil {
		return ok(name, target, "authorised to send: a sender link attached (nothing was sent)")
	}
	err = servicebus.Classify(err)
	switch {
	case errors.Is(err, servicebus.ErrUnauthorized):
		return fail(name, target, "unauthorized: Service Bus refused a sender on the reply queue (the Send right is missing)", roleFix(q, "Azure Service Bus Data Sender", replyQueue, "Send"))
	case errors.Is(err, servicebus.ErrNotFound) || amqpNotFound(err):
		return fail(name, target, fmt.Sprintf("the reply queue %q does not exist in this namespace", replyQueue),
			fmt.Sprintf("create the queue %q (docs/azure-setup.md, step 3), or pass the name the senders put in ReplyTo to --reply-queue", replyQueue))
	case proxy.Is(err):
		return fail(name, target, fmt.Sprintf("the proxy stopped the connection: %v", err), "see the proxy check above")
	case isTLSVerify(err):
		return fail(name, target, fmt.Sprintf("TLS to the namespace does not verify: %v", err), "see the namespace tls check above")
	}
	return fail(name, target, fmt.Sprintf("cannot attach a sender to the reply queue: %v", err), "see the queue check above")
}

// roleFix says how to grant the right a queue refused: the data role to
// an Entra ID identity, or a SAS key with the right.
func roleFix(q config.Queue, role, queue, right string) string {
	if a := q.Auth; a != "" && a != string(servicebus.AuthConnectionString) {
		who := fmt.Sprintf("the identity (auth %s, client_id %q)", a, q.ClientID)
		if q.ClientID == "" {
			who = fmt.Sprintf("the identity (auth %s)", a)
		}
		return fmt.Sprintf("give %s the role %q on the queue %s: az role assignment create --assignee <its object id> --role %q --scope <the queue's resource id> (docs/azure-setup.md, step 4); a new assignment can take minutes to apply",
			who, role, queue, role)
	}
	return fmt.Sprintf("use a connection string whose key has the %s right on the queue %s (Azure portal > Service Bus namespace > Shared access policies) in queue.connection_string_file or queue.connection_string_env", right, queue)
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
	case isTLSVerify(err):
		return fail(name, target, fmt.Sprintf("TLS to the namespace does not verify: %v", err), "see the namespace tls check above")
	case errors.Is(err, servicebus.ErrUnauthorized):
		if a := q.Auth; a != "" && a != string(servicebus.AuthConnectionString) {
			return fail(name, target, "unauthorized: Service Bus refused a receiver on the queue (the identity lacks the Listen right)", roleFix(q, "Azure Service Bus Data Receiver", q.Name, "Listen"))
		}
		return fail(name, target, "unauthorized: Service Bus refused the credentials (wrong SAS key or key name, or a key without Listen)",
			"put the right connection string (with a key allowed to Listen on the queue; Azure portal > Service Bus namespace > Shared access policies) in queue.connection_string_file or queue.connection_string_env")
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

// isTLSVerify reports a certificate that did not verify.
func isTLSVerify(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
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
