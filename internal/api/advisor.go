package api

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/advisor"
	"github.com/capydb/capydb/internal/auth"
)

// IndexAdvisorReport is the wire form of the index advisor's answer.
type IndexAdvisorReport = advisor.IndexAdvisorReport

// IndexHygieneReport is the wire form of the index hygiene report.
type IndexHygieneReport = advisor.IndexHygieneReport

// IndexAdvisorInput takes the thresholds (sent only when positive).
type IndexAdvisorInput struct {
	ProjectID      string `path:"projectID"`
	MinFilter      int    `query:"min_filter" minimum:"0" doc:"rows a predicate must filter on average (default 1000)"`
	MinSelectivity int    `query:"min_selectivity" minimum:"0" maximum:"100" doc:"percent of rows it must filter (default 30)"`
}

// IndexAdvisorOutput is {advisor}.
type IndexAdvisorOutput struct {
	Body struct {
		Advisor *IndexAdvisorReport `json:"advisor"`
	}
}

// IndexHygieneOutput is {hygiene}.
type IndexHygieneOutput struct {
	Body struct {
		Hygiene *IndexHygieneReport `json:"hygiene"`
	}
}

func (s *Server) registerAdvisor() {
	tags := []string{"advisor"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getIndexAdvisor", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/advisor/indexes", Scope: auth.ScopeProjectsRead},
		Summary: "Suggest indexes from the predicates queries filtered on (pg_qualstats, sizes by hypopg)", Tags: tags, Errors: notReady}, s.getIndexAdvisor)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getIndexHygiene", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/advisor/index-hygiene", Scope: auth.ScopeProjectsRead},
		Summary: "Unused and redundant indexes worth dropping", Tags: tags, Errors: notReady}, s.getIndexHygiene)
}

func (s *Server) getIndexAdvisor(ctx context.Context, in *IndexAdvisorInput) (*IndexAdvisorOutput, error) {
	t, err := s.resolveTarget(ctx, false, in.ProjectID)
	if err != nil {
		return nil, err
	}
	out := &IndexAdvisorOutput{}
	// Read-write only for hypopg's backend-local hypothetical indexes; the
	// transaction is always rolled back.
	err = s.inTenantTx(ctx, t, pgx.ReadWrite, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out.Body.Advisor, err = advisor.Indexes(ctx, tx, in.MinFilter, in.MinSelectivity)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) getIndexHygiene(ctx context.Context, in *ProjectPath) (*IndexHygieneOutput, error) {
	t, err := s.resolveTarget(ctx, false, in.ProjectID)
	if err != nil {
		return nil, err
	}
	out := &IndexHygieneOutput{}
	err = s.inTenantTx(ctx, t, pgx.ReadOnly, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out.Body.Hygiene, err = advisor.Hygiene(ctx, tx, advisor.HygieneOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
