package tfprovider

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Plan-time checks that mirror the API's validation (API.md §3), so a bad
// value fails at `terraform plan` instead of half-way through an apply.

type validatorString = validator.String

// known returns the value when it is set and known (unknown values are
// checked again at apply time).
func known(v types.String) (string, bool) {
	if v.IsNull() || v.IsUnknown() {
		return "", false
	}
	return v.ValueString(), true
}

type oneOf []string

func (o oneOf) Description(context.Context) string {
	return "one of " + strings.Join(o, ", ")
}
func (o oneOf) MarkdownDescription(ctx context.Context) string { return o.Description(ctx) }
func (o oneOf) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if s, ok := known(req.ConfigValue); ok && !slices.Contains(o, s) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid value",
			fmt.Sprintf("%s must be one of %s, got %q", req.Path, strings.Join(o, ", "), s))
	}
}

// pattern is a regular expression plus a length range in characters.
type pattern struct {
	re       *regexp.Regexp
	min, max int
	what     string
}

func (p pattern) Description(context.Context) string { return p.what }
func (p pattern) MarkdownDescription(ctx context.Context) string {
	return p.Description(ctx)
}
func (p pattern) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	s, ok := known(req.ConfigValue)
	if !ok {
		return
	}
	n := utf8.RuneCountInString(s)
	if n < p.min || n > p.max || (p.re != nil && !p.re.MatchString(s)) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid value", fmt.Sprintf("%s must be %s, got %q", req.Path, p.what, s))
	}
}

var (
	// API.md §3.6: name 1–64 characters, trimmed, no control characters.
	projectName = nameCheck{}
	// API.md §3.6: slug.
	projectSlug = pattern{re: regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`), min: 1, max: 63,
		what: "1-63 lower-case letters, digits and -, starting with a letter and not ending with -"}
	// API.md §3.11: preview name.
	previewName = pattern{re: regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`), min: 1, max: 63,
		what: "1-63 letters, digits, -, _ and ., starting with a letter or digit"}
	keyName   = pattern{min: 1, max: 100, what: "1-100 characters"}
	labelText = pattern{min: 1, max: 120, what: "1-120 characters"}
	describe  = pattern{min: 1, max: 500, what: "1-500 characters (leave it out for none)"}
	// Ids the API hands out (DESIGN.md: prefix + suffix).
	projectID = pattern{re: regexp.MustCompile(`^prj_[A-Za-z0-9]+$`), min: 5, max: 100, what: "a project id (prj_...)"}
)

type nameCheck struct{}

func (nameCheck) Description(context.Context) string {
	return "1-64 characters without surrounding spaces or control characters"
}
func (n nameCheck) MarkdownDescription(ctx context.Context) string { return n.Description(ctx) }
func (nameCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	s, ok := known(req.ConfigValue)
	if !ok {
		return
	}
	bad := strings.TrimSpace(s) != s || utf8.RuneCountInString(s) < 1 || utf8.RuneCountInString(s) > 64 ||
		strings.IndexFunc(s, unicode.IsControl) >= 0
	if bad {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid name",
			fmt.Sprintf("%s must be 1-64 characters without surrounding spaces or control characters, got %q", req.Path, s))
	}
}

type rfc3339Future struct{}

func (rfc3339Future) Description(context.Context) string { return "an RFC 3339 time in the future" }
func (r rfc3339Future) MarkdownDescription(ctx context.Context) string {
	return r.Description(ctx)
}
func (rfc3339Future) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	s, ok := known(req.ConfigValue)
	if !ok {
		return
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid time", fmt.Sprintf("%s must be an RFC 3339 time (2030-01-02T15:04:05Z): %v", req.Path, err))
		return
	}
	if !t.After(time.Now()) {
		resp.Diagnostics.AddAttributeError(req.Path, "Time in the past", fmt.Sprintf("%s must be in the future, got %s", req.Path, s))
	}
}

type httpURL struct{ httpsOnly bool }

func (h httpURL) Description(context.Context) string {
	if h.httpsOnly {
		return "an https:// URL"
	}
	return "an http:// or https:// URL"
}
func (h httpURL) MarkdownDescription(ctx context.Context) string { return h.Description(ctx) }
func (h httpURL) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	s, ok := known(req.ConfigValue)
	if !ok {
		return
	}
	u, err := url.Parse(s)
	okScheme := err == nil && (u.Scheme == "https" || (!h.httpsOnly && u.Scheme == "http"))
	if !okScheme || u.Host == "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid URL", fmt.Sprintf("%s must be %s, got %q", req.Path, h.Description(ctx), s))
	}
}

type duration struct{}

func (duration) Description(context.Context) string { return "a positive Go duration such as 30m" }
func (d duration) MarkdownDescription(ctx context.Context) string {
	return d.Description(ctx)
}
func (duration) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	s, ok := known(req.ConfigValue)
	if !ok {
		return
	}
	if d, err := time.ParseDuration(s); err != nil || d <= 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration", fmt.Sprintf("%s must be a positive duration such as 30m, got %q", req.Path, s))
	}
}

type intRange struct{ min, max int64 }

func (r intRange) Description(context.Context) string {
	return fmt.Sprintf("between %d and %d", r.min, r.max)
}
func (r intRange) MarkdownDescription(ctx context.Context) string { return r.Description(ctx) }
func (r intRange) ValidateInt64(_ context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if v := req.ConfigValue.ValueInt64(); v < r.min || v > r.max {
		resp.Diagnostics.AddAttributeError(req.Path, "Value out of range",
			fmt.Sprintf("%s must be between %d and %d, got %d", req.Path, r.min, r.max, v))
	}
}

// setOf checks every known element of a set of strings.
type setOf struct {
	elem     validatorString
	nonEmpty bool
}

func (s setOf) Description(ctx context.Context) string {
	return "each element " + s.elem.Description(ctx)
}
func (s setOf) MarkdownDescription(ctx context.Context) string { return s.Description(ctx) }
func (s setOf) ValidateSet(ctx context.Context, req validator.SetRequest, resp *validator.SetResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	elems := req.ConfigValue.Elements()
	if s.nonEmpty && len(elems) == 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Empty set", fmt.Sprintf("%s must not be empty", req.Path))
	}
	for _, e := range elems {
		str, ok := e.(types.String)
		if !ok {
			continue
		}
		r := &validator.StringResponse{}
		s.elem.ValidateString(ctx, validator.StringRequest{Path: req.Path.AtSetValue(str), ConfigValue: str}, r)
		resp.Diagnostics.Append(r.Diagnostics...)
	}
}

var (
	digits     = regexp.MustCompile(`^[0-9]+$`)
	approvalRe = regexp.MustCompile(`^ap_[A-Za-z0-9]{32,}$`)
)
