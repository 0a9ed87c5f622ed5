package health

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CountersFrom returns a Counters function for Options that reads the
// counters and gauges whose names start with prefix (e.g. "adwriteback_")
// from g at each call, keyed by name{label="value",...} without the prefix.
// Histograms are summarised by their _count. A gather error yields the
// metrics gathered anyway.
func CountersFrom(g prometheus.Gatherer, prefix string) func() map[string]float64 {
	return func() map[string]float64 {
		mfs, _ := g.Gather() // partial results are still worth showing
		out := map[string]float64{}
		for _, mf := range mfs {
			name := mf.GetName()
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			short := strings.TrimPrefix(name, prefix)
			for _, m := range mf.GetMetric() {
				switch mf.GetType() {
				case dto.MetricType_COUNTER:
					out[short+labels(m)] = m.GetCounter().GetValue()
				case dto.MetricType_GAUGE:
					out[short+labels(m)] = m.GetGauge().GetValue()
				case dto.MetricType_HISTOGRAM:
					out[short+"_count"+labels(m)] = float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		return out
	}
}

func labels(m *dto.Metric) string {
	lps := m.GetLabel()
	if len(lps) == 0 {
		return ""
	}
	parts := make([]string, 0, len(lps))
	for _, lp := range lps {
		parts = append(parts, lp.GetName()+"="+lp.GetValue())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
