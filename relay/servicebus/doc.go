// Package servicebus is the connector's Azure Service Bus transport. It owns:
//
//   - building an azservicebus client from configuration (SAS connection string or Entra ID
//     through azidentity, whose token requests use the connector's proxy; AMQP over TCP 5671
//     or over WebSockets on 443; TLS with the system roots or a CA file; a custom endpoint),
//     and the one set of rules that configuration must follow (Config.Problems): auth.go;
//   - the WebSocket dialer: the SDK's URL as given, TLS verified for the namespace, through
//     the HTTP CONNECT proxy of relay/proxy, with a DialTracker that keeps the cause of a
//     failed dial (a 407) which the SDK drops: websocket.go; ProbeWebSocket, the same
//     connection opened and closed for the doctor: probe.go;
//   - Source, which receives commands in peek-lock mode with bounded prefetch and concurrency,
//     renews locks at half the lock duration until settled, settles (complete, abandon with
//     backoff, dead-letter with a reason): source.go; its reconnect loop, which guards
//     against stalls and reconnect storms with a watchdog and a backoff reset by each
//     successful receive, one named step per turn: run.go;
//   - ReplySender, which answers a command on its ReplyTo queue: reply.go;
//   - CommandSender, which sends commands and awaits their replies (the sender SDK's
//     Transport): command.go;
//   - StatusSender, which sends the connector's heartbeats to its status queue (unique
//     MessageId, TTL of 2 intervals, content type and properties a reader can filter on),
//     and StatusPeeker, which pages through that queue by peeking, for the sender SDK's
//     StatusSource: status.go;
//   - Health, the link state for the readiness endpoint: health.go.
//
// The handler the connector engine implements sees only transport-neutral data (transport.Delivery).
package servicebus
