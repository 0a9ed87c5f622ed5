package app

import (
	"fmt"
	"os"
	"sync"
)

// LogFile is the text log's file (log.path): a writer that appends to
// path, created 0600, and that Reopen points at path again after
// logrotate moved the file away. slog handlers write each record with one
// Write; the mutex makes each Write land whole in the old file or whole in
// the new one, never split or lost.
type LogFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenLogFile opens path for appending, creating it 0600.
func OpenLogFile(path string) (*LogFile, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, fmt.Errorf("text log: %w", err)
	}
	return &LogFile{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// Write appends p to the file in force.
func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens path again (created 0600 if it was moved away) and swaps
// it in; the old file is closed. If the open fails, writes keep going to
// the old file and the error is returned.
func (l *LogFile) Reopen() error {
	f, err := openAppend(l.path)
	if err != nil {
		return fmt.Errorf("text log: reopen: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("text log: reopen: close the old file: %w", err)
	}
	return nil
}

// Close closes the file; later writes fail.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
