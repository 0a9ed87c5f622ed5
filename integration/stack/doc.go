// Package stack owns what the integration stacks share when they put a
// connector together against the test DC and the Service Bus emulator: the
// connector's configuration, written as YAML from a typed ConfigSpec (the
// field names are connector/config's); the key files and secret files the
// configuration points at; the emulator queues; and a sender SDK client over
// the real Service Bus SDK. How a stack runs the connector (in process or as
// a binary), what it breaks and what it checks stay with that stack.
package stack
