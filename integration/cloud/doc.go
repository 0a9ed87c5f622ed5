// Package cloud holds the integration tests of issue 15, named
// TestCloud...: what the cloud side (the SSPR portal's sender) sees of a
// connector, driven as a portal would drive it through the real queue
// (integration/stack: the Service Bus emulator, the sender SDK, the
// connector in process or as the binary) against the Samba test DC.
// Run with -tags integration.
package cloud
