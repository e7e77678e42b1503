package api

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// StatusComponent is one part of the service.
type StatusComponent struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	Region  string `json:"-"`
}

// RegionStatus is the worst status of a region's clusters.
type RegionStatus struct {
	Region string `json:"region"`
	Status string `json:"status"`
}

// StatusOutput is GET /status (bare).
type StatusOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Service     string            `json:"service"`
		Status      string            `json:"status"`
		Components  []StatusComponent `json:"components"`
		Regions     []RegionStatus    `json:"regions"`
		GeneratedAt time.Time         `json:"generated_at"`
		UpdatedAt   time.Time         `json:"updated_at"`
	}
}

var severity = map[string]int{"operational": 0, "degraded": 1, "outage": 2}

func worse(a, b string) string {
	if severity[b] > severity[a] {
		return b
	}
	return a
}

func (s *Server) registerStatus() {
	var mu sync.Mutex
	var lastStatus string
	updatedAt := time.Now().UTC()
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getStatus", Method: http.MethodGet, Path: "/status", Anonymous: true},
		Summary: "Service status", Tags: []string{"status"}},
		func(ctx context.Context, _ *struct{}) (*StatusOutput, error) {
			ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
			defer cancel()
			out := &StatusOutput{CacheControl: "no-store"}
			out.Body.Service = "capydb-controlplane"
			out.Body.Components = []StatusComponent{}
			if s.deps.Components != nil {
				out.Body.Components = s.deps.Components(ctx)
			}
			overall := "operational"
			regions := map[string]string{}
			var order []string
			for _, c := range out.Body.Components {
				overall = worse(overall, c.Status)
				if c.Region != "" {
					if _, ok := regions[c.Region]; !ok {
						order = append(order, c.Region)
						regions[c.Region] = "operational"
					}
					regions[c.Region] = worse(regions[c.Region], c.Status)
				}
			}
			out.Body.Regions = []RegionStatus{}
			for _, r := range order {
				out.Body.Regions = append(out.Body.Regions, RegionStatus{Region: r, Status: regions[r]})
			}
			out.Body.Status = overall
			now := time.Now().UTC()
			mu.Lock()
			if overall != lastStatus {
				lastStatus, updatedAt = overall, now
			}
			out.Body.GeneratedAt, out.Body.UpdatedAt = now, updatedAt
			mu.Unlock()
			return out, nil
		})
}

// registerStubs answers the routes of features that are out of scope.
func (s *Server) registerStubs() {
	type kvOut struct {
		Body struct {
			KVStores []any `json:"kv_stores"`
		}
	}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listKvStores", Method: http.MethodGet, Path: "/v1/kv"},
		Summary: "K/V stores (not offered)", Tags: []string{"stubs"}},
		func(ctx context.Context, _ *struct{}) (*kvOut, error) {
			out := &kvOut{}
			out.Body.KVStores = []any{}
			return out, nil
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectKvStore", Method: http.MethodGet, Path: "/v1/projects/{projectID}/kv"},
		Summary: "Project K/V store (not offered): always 404 kv store not found", Tags: []string{"stubs"}, NoSuccess: true},
		func(ctx context.Context, in *ProjectPath) (*struct{}, error) {
			if _, _, err := s.loadProject(ctx, in.ProjectID); err != nil {
				return nil, err
			}
			return nil, errorf(http.StatusNotFound, "kv store not found")
		})
}
