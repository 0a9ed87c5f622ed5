// Package protocol owns the adwriteback wire protocol, version 2 (and the
// version 1 it still reads and answers): the command, result and status
// messages, their strict and bounded decoding, the HPKE
// sealing of passwords to the connector's key, the Ed25519 signatures of
// both sides, the stable result codes, and the replay cache interface (with
// an in-memory implementation).
//
// The format is specified in PROTOCOL.md beside this file, precisely enough
// for a second implementation; a test decodes every example in it.
//
// Sending side (the cloud): build a Command, Seal its password(s) to a
// SealKey, SignCommand with a SigningKey; later VerifyResult. Receiving side
// (the connector): Receiver.Receive verifies, checks times, opens and claims
// the id; SignResult answers. Every decoding or verification failure is a
// *Error whose Code is the result code it becomes upstream and whose text
// never contains a secret. Plaintext passwords travel as Secret, which
// redacts itself everywhere.
package protocol
