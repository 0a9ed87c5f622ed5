package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestReloadRunsEveryReloaderInOrderDespiteFailures(t *testing.T) {
	var logs strings.Builder
	a := &App{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	var order []string
	a.OnReload("one", func(context.Context) error { order = append(order, "one"); return nil })
	a.OnReload("two", func(context.Context) error { order = append(order, "two"); return errors.New("bad file") })
	a.OnReload("three", func(context.Context) error { order = append(order, "three"); return nil })
	err := a.Reload(context.Background())
	if strings.Join(order, ",") != "one,two,three" {
		t.Fatalf("order %v", order)
	}
	if err == nil || !strings.Contains(err.Error(), "reload two: bad file") {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(logs.String(), "what=two") || !strings.Contains(logs.String(), "what=three") {
		t.Fatalf("log %s", logs.String())
	}
	if err := (&App{Log: a.Log}).Reload(context.Background()); err != nil {
		t.Fatalf("no reloaders: %v", err)
	}
}
