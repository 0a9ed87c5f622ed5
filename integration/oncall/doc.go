// Package oncall holds the integration tests of issue 17 (TestOnCall...): what an on-call admin relies on, against the real connector, queue and Samba DC.
package oncall
