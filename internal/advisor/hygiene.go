package advisor

import (
	"context"
	"fmt"
	"time"

	"github.com/capydb/capydb/internal/schema"
	"github.com/capydb/capydb/internal/schemalint"
)

// Hygiene defaults (PRODUCT.md §20).
const (
	MinIndexSizeBytes = 1 << 20
	MinObservation    = 7 * 24 * time.Hour
)

// IndexHygieneReport is the hygiene report of API.md §4.14.
type IndexHygieneReport struct {
	Available                bool             `json:"available"`
	Reason                   string           `json:"reason,omitempty"`
	ObservationWindowSeconds int64            `json:"observation_window_seconds"`
	StatsResetAt             *time.Time       `json:"stats_reset_at,omitempty"`
	MinIndexSizeBytes        int64            `json:"min_index_size_bytes"`
	ReclaimableBytes         int64            `json:"reclaimable_bytes"`
	UnusedIndexes            []UnusedIndex    `json:"unused_indexes"`
	RedundantIndexes         []RedundantIndex `json:"redundant_indexes"`
}

// UnusedIndex is an index never scanned over the window.
type UnusedIndex struct {
	Schema        string `json:"schema"`
	Table         string `json:"table"`
	Index         string `json:"index"`
	Definition    string `json:"definition"`
	DropStatement string `json:"drop_statement"`
	IndexScans    int64  `json:"index_scans"`
	SizeBytes     int64  `json:"size_bytes"`
}

// RedundantIndex is an index covered by a wider one.
type RedundantIndex struct {
	Schema        string `json:"schema"`
	Table         string `json:"table"`
	Index         string `json:"index"`
	Definition    string `json:"definition"`
	CoveredBy     string `json:"covered_by"`
	DropStatement string `json:"drop_statement"`
	SizeBytes     int64  `json:"size_bytes"`
}

// HygieneOptions tune a run (zero values: the defaults).
type HygieneOptions struct {
	MinObservation    time.Duration
	MinIndexSizeBytes int64
}

// Hygiene lists unused and redundant indexes of at least the minimum size,
// once the statistics cover the observation window. Unique, primary-key,
// exclusion and replica-identity indexes are never listed.
func Hygiene(ctx context.Context, q schema.Querier, o HygieneOptions) (*IndexHygieneReport, error) {
	if o.MinObservation == 0 {
		o.MinObservation = MinObservation
	}
	if o.MinIndexSizeBytes == 0 {
		o.MinIndexSizeBytes = MinIndexSizeBytes
	}
	r := &IndexHygieneReport{MinIndexSizeBytes: o.MinIndexSizeBytes, UnusedIndexes: []UnusedIndex{}, RedundantIndexes: []RedundantIndex{}}
	window, err := schemalint.ObservationWindow(ctx, q)
	if err != nil {
		return nil, err
	}
	r.ObservationWindowSeconds = int64(window.Seconds())
	if reset, err := schemalint.StatsResetAt(ctx, q); err != nil {
		return nil, err
	} else if !reset.IsZero() {
		r.StatsResetAt = &reset
	}
	if window < o.MinObservation {
		r.Reason = fmt.Sprintf("index statistics cover %s; index hygiene needs at least %s",
			schemalint.RoundDuration(window), schemalint.RoundDuration(o.MinObservation))
		return r, nil
	}
	idx, err := schemalint.LoadIndexes(ctx, q)
	if err != nil {
		return nil, err
	}
	r.Available = true
	counted := map[string]bool{}
	for _, i := range schemalint.Unused(idx, o.MinIndexSizeBytes) {
		r.UnusedIndexes = append(r.UnusedIndexes, UnusedIndex{Schema: i.Schema, Table: i.Table, Index: i.Name,
			Definition: i.Definition, DropStatement: i.DropStatement(), IndexScans: i.Scans, SizeBytes: i.SizeBytes})
		counted[i.Qualified()] = true
		r.ReclaimableBytes += i.SizeBytes
	}
	for _, d := range schemalint.Redundant(idx, o.MinIndexSizeBytes) {
		r.RedundantIndexes = append(r.RedundantIndexes, RedundantIndex{Schema: d.Index.Schema, Table: d.Index.Table,
			Index: d.Index.Name, Definition: d.Index.Definition, CoveredBy: d.CoveredBy.Name,
			DropStatement: d.Index.DropStatement(), SizeBytes: d.Index.SizeBytes})
		if !counted[d.Index.Qualified()] {
			counted[d.Index.Qualified()] = true
			r.ReclaimableBytes += d.Index.SizeBytes
		}
	}
	return r, nil
}
