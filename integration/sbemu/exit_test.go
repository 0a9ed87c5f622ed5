//go:build integration

package sbemu_test

import "os"

var exitFn = os.Exit
