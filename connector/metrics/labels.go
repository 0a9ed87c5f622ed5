package metrics

import "sync"

// labelSet keeps a label's values stable and bounded. With a fixed set of
// known values, anything else maps to Other. Without one, a value must look
// like a lower-case identifier or URL-ish token, and only the first max
// distinct values are kept; later new ones map to Other.
type labelSet struct {
	known map[string]bool
	max   int

	mu   sync.Mutex
	seen map[string]bool
}

func newLabelSet(known []string, max int) *labelSet {
	s := &labelSet{max: max, seen: map[string]bool{}}
	if known != nil {
		s.known = make(map[string]bool, len(known))
		for _, k := range known {
			s.known[k] = true
		}
	}
	return s
}

const maxLabelLen = 128

func (s *labelSet) value(v string) string {
	if s.known != nil {
		if s.known[v] {
			return v
		}
		return Other
	}
	if !plain(v) {
		return Other
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[v] {
		return v
	}
	if len(s.seen) >= s.max {
		return Other
	}
	s.seen[v] = true
	return v
}

// plain accepts short printable ASCII tokens without spaces or quotes: rule
// names, operation names and DC URLs such as ldaps://dc1.corp.example:636.
func plain(v string) bool {
	if v == "" || len(v) > maxLabelLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == ':', c == '/', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
