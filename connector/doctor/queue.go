package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

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
	return CheckQueues(ctx, q, timeout)[0]
}

// SendTarget is a queue the connector sends to, and the check that proves
// it may.
type SendTarget struct {
	Check string // the check's name: "reply queue", "status queue"
	Queue string
	// Missing says how to fix a queue that does not exist.
	Missing string
}

// ReplyTarget is results.reply_queue (or doctor's --reply-queue).
func ReplyTarget(queue string) SendTarget {
	return SendTarget{Check: "reply queue", Queue: queue,
		Missing: fmt.Sprintf("create the queue %q (docs/azure-setup.md, step 3), or pass the name the senders put in ReplyTo to --reply-queue", queue)}
}

// StatusTarget is status.queue, where the presence heartbeat goes.
func StatusTarget(queue string) SendTarget {
	return SendTarget{Check: "status queue", Queue: queue,
		Missing: fmt.Sprintf("create the queue %q (docs/azure-setup.md, step 7), or leave status.queue empty to send no heartbeat", queue)}
}

// CheckQueues proves the roles the connector needs by using them, on one
// connection: Listen on the command queue by opening a receiver and
// peeking one message (a peek takes no lock, consumes nothing and settles
// nothing), and Send on each of sends by attaching a sender link
// (Sender.NewMessageBatch attaches the link to learn the queue's maximum
// message size, and Service Bus checks the Send right on attach) without
// sending anything. It returns the "queue" check, then one check for each
// of sends.
func CheckQueues(ctx context.Context, q config.Queue, timeout time.Duration, sends ...SendTarget) []Check {
	where := queueEndpoint(q)
	cfg := QueueClientConfig(q)
	dials := servicebus.NewDialTracker()
	cfg.Dials = dials
	client, err := servicebus.NewClient(cfg)
	if err != nil {
		out := []Check{QueueResult(err, q, where)}
		for _, t := range sends {
			out = append(out, skip(t.Check, where+"/"+t.Queue, "no client (see the queue check)"))
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
	for _, t := range sends {
		out = append(out, SendResult(dials.Explain(attachSender(ctx, client, t.Queue)), q, where, t))
	}
	return out
}

// attachSender attaches a sender link to queue, sending nothing.
func attachSender(ctx context.Context, client *azservicebus.Client, queue string) error {
	s, err := client.NewSender(queue, nil)
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	_, err = s.NewMessageBatch(ctx, nil)
	return err
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

// queueFault is why a queue check failed, decided once by classifyQueue
// for both queue checks.
type queueFault int

const (
	faultOther        queueFault = iota // none of the below: reachability
	faultConfig                         // invalid queue settings
	faultProxy                          // the proxy stopped the connection
	faultTLS                            // TLS to the namespace does not verify
	faultTokenRefused                   // Entra ID refused the SDK a token
	faultUnauthorized                   // Service Bus refused the credentials or the right
	faultNotFound                       // no such queue
	faultTimeout                        // no answer in time
)

// classifyQueue classifies an error from the SDK's client, after
// servicebus.Classify, by type only.
func classifyQueue(err error) queueFault {
	switch {
	case errors.Is(err, servicebus.ErrConfig):
		return faultConfig
	case proxy.Is(err):
		return faultProxy
	case isTLSVerify(err):
		return faultTLS
	case errors.Is(err, servicebus.ErrTokenRefused):
		return faultTokenRefused
	case errors.Is(err, servicebus.ErrUnauthorized):
		return faultUnauthorized
	case errors.Is(err, servicebus.ErrNotFound) || amqpNotFound(err):
		return faultNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return faultTimeout
	}
	return faultOther
}

// SendResult explains the outcome of attaching a sender to t's queue.
func SendResult(err error, q config.Queue, where string, t SendTarget) Check {
	target := fmt.Sprintf("%s/%s", where, t.Queue)
	if err == nil {
		return ok(t.Check, target, "authorised to send: a sender link attached (nothing was sent)")
	}
	err = servicebus.Classify(err)
	switch classifyQueue(err) {
	case faultUnauthorized:
		return fail(t.Check, target, fmt.Sprintf("unauthorized: Service Bus refused a sender on the %s (the Send right is missing)", t.Check)+refusalReason(err),
			roleFix(q, "Azure Service Bus Data Sender", t.Queue, "Send"))
	case faultTokenRefused:
		return tokenRefused(t.Check, target, err, q)
	case faultNotFound:
		return fail(t.Check, target, fmt.Sprintf("the %s %q does not exist in this namespace", t.Check, t.Queue), t.Missing)
	case faultProxy:
		return fail(t.Check, target, fmt.Sprintf("the proxy stopped the connection: %v", err), "see the proxy check above")
	case faultTLS:
		return fail(t.Check, target, fmt.Sprintf("TLS to the namespace does not verify: %v", err), "see the namespace tls check above")
	}
	return fail(t.Check, target, fmt.Sprintf("cannot attach a sender to the %s: %v", t.Check, err), "see the queue check above")
}

// roleFix says how to grant the right a queue refused: the data role to
// an Entra ID identity (whose token must be for Service Bus's audience),
// or a SAS key with the right.
func roleFix(q config.Queue, role, queue, right string) string {
	if a := q.Auth; a != "" && a != string(servicebus.AuthConnectionString) {
		who := fmt.Sprintf("the identity (auth %s, client_id %q)", a, q.ClientID)
		if q.ClientID == "" {
			who = fmt.Sprintf("the identity (auth %s)", a)
		}
		return fmt.Sprintf("give %s the role %q on the queue %s: az role assignment create --assignee <its object id> --role %q --scope <the queue's resource id> (docs/azure-setup.md, step 4); a new assignment can take minutes to apply; if the role is there, the token must be for the audience %s (see the entra token check)",
			who, role, queue, role, servicebusAudience)
	}
	return fmt.Sprintf("use a connection string whose key has the %s right on the queue %s (Azure portal > Service Bus namespace > Shared access policies) in queue.connection_string_file or queue.connection_string_env", right, queue)
}

// refusalReason is the reason Service Bus gave with a refusal (the AMQP
// error's description: "InvalidAudience: ...", "Unauthorized access.
// 'Listen' claim(s) are required ..."), on one line, prefixed with ": ";
// "" when no *amqp.Error is reachable with errors.As. The SDK's own
// *azservicebus.Error (v1.11.0) does not unwrap, so its refusals show
// only as the Code; the description is only in its text.
func refusalReason(err error) string {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return ""
	}
	d := strings.Join(strings.FieldsFunc(ae.Description, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if d == "" {
		return ""
	}
	return ": Service Bus says " + strconv.Quote(d)
}

// tokenRefused explains a queue check whose token Entra ID refused: the
// credential, not the namespace's reachability, is what to fix.
func tokenRefused(name, target string, err error, q config.Queue) Check {
	fix := fmt.Sprintf("see the entra token check above; correct %s (auth %s), queue.tenant_id and queue.client_id", credentialSetting(q), orDefault(q.Auth, "default"))
	if servicebus.AuthKind(q.Auth) == servicebus.AuthManagedIdentity {
		fix = "see the entra token check above; check " + credentialSetting(q)
	}
	return fail(name, target, fmt.Sprintf("Entra ID refused the token the queue connection asked for: %v", err), fix)
}

// credentialSetting names the setting that holds the credential of q's
// Entra ID auth kind.
func credentialSetting(q config.Queue) string {
	switch servicebus.AuthKind(q.Auth) {
	case servicebus.AuthClientSecret:
		return secretSource(q)
	case servicebus.AuthClientCertificate:
		return fmt.Sprintf("the certificate %s (queue.certificate_file) and its app registration", q.CertificateFile)
	case servicebus.AuthWorkloadIdentity:
		return "the federated token file (queue.token_file, or AZURE_FEDERATED_TOKEN_FILE)"
	case servicebus.AuthManagedIdentity:
		return "the server's managed identity (azcmagent show; queue.managed_identity_client_id for a user-assigned one)"
	}
	return "the credential settings"
}

// QueueResult explains the outcome of the peek.
func QueueResult(err error, q config.Queue, where string) Check {
	const name = "queue"
	target := fmt.Sprintf("%s/%s", where, q.Name)
	if err == nil {
		return ok(name, target, "reachable and authorised: a receiver opened and peeked (auth %s, transport %s)", orDefault(q.Auth, "connection_string"), orDefault(q.Transport, "amqp"))
	}
	err = servicebus.Classify(err)
	ws := q.Transport == string(servicebus.TransportWebSockets)
	switch classifyQueue(err) {
	case faultConfig:
		return fail(name, target, fmt.Sprintf("the queue settings are invalid: %v", err), "correct the queue section of the configuration")
	case faultProxy:
		return fail(name, target, fmt.Sprintf("the proxy stopped the connection: %v", err), "see the proxy check above")
	case faultTLS:
		return fail(name, target, fmt.Sprintf("TLS to the namespace does not verify: %v", err), "see the namespace tls check above")
	case faultTokenRefused:
		return tokenRefused(name, target, err, q)
	case faultUnauthorized:
		if a := q.Auth; a != "" && a != string(servicebus.AuthConnectionString) {
			return fail(name, target, "unauthorized: Service Bus refused a receiver on the queue (the identity lacks the Listen right)"+refusalReason(err), roleFix(q, "Azure Service Bus Data Receiver", q.Name, "Listen"))
		}
		return fail(name, target, "unauthorized: Service Bus refused the credentials (wrong SAS key or key name, or a key without Listen)"+refusalReason(err),
			"put the right connection string (with a key allowed to Listen on the queue; Azure portal > Service Bus namespace > Shared access policies) in queue.connection_string_file or queue.connection_string_env")
	case faultNotFound:
		return fail(name, target, fmt.Sprintf("the queue %q does not exist in this namespace", q.Name),
			fmt.Sprintf("create the queue %q (Azure portal, or `az servicebus queue create --name %s ...`), or correct queue.name", q.Name, q.Name))
	case faultTimeout:
		if ws {
			return fail(name, target, "no answer in time: the namespace is unreachable from here",
				"allow outbound TCP 443 to the namespace, or set queue.proxy (see the proxy check above)")
		}
		return fail(name, target, "no answer in time: the namespace is unreachable from here",
			"allow outbound TCP 5671 (AMQP) to the namespace, or set queue.transport: websockets (TCP 443, with queue.proxy if a proxy is required)")
	}
	if ws {
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
