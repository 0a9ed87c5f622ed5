package stack

import (
	"context"
	"fmt"

	"github.com/adwriteback/adwriteback/integration/sbemu"
)

// Queue is one emulator queue to create.
type Queue struct {
	Name    string
	Options sbemu.QueueOptions
}

// Queues creates the queues on the emulator, in order.
func Queues(ctx context.Context, emu *sbemu.Emulator, qs ...Queue) error {
	for _, q := range qs {
		if err := emu.CreateQueue(ctx, q.Name, q.Options); err != nil {
			return fmt.Errorf("stack: create queue %s: %w", q.Name, err)
		}
	}
	return nil
}
