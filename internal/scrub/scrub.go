// Package scrub removes secrets from text before it is stored or logged (job
// output, error messages, command lines).
//
// Two mechanisms are combined: exact replacement of secrets the caller knows
// about (the password it just passed to pg_dump), and patterns that catch
// credentials nobody registered (a connection URL echoed by a tool, an ALTER
// ROLE statement in a psql error). When a pattern has to choose, it errs
// towards hiding a little too much rather than leaking part of a secret.
package scrub

import (
	"cmp"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Mask replaces every secret.
const Mask = "***"

// MinSecretLen is the shortest known secret that is replaced; shorter ones are
// ignored because replacing "abc" everywhere would destroy ordinary text.
const MinSecretLen = 6

// pattern is a credential shape that is scrubbed even when the value is not a
// known secret.
type pattern struct {
	re   *regexp.Regexp
	repl string
}

// passwordValue matches a value in key=value form: a single- or double-quoted
// string with backslash escapes (libpq conninfo, shell), an unterminated quote
// up to the end of the line (output truncated mid-value), or a bare word. The
// bare word runs to the next whitespace even through quote characters, so a
// password containing a quote is never half-scrubbed.
const passwordValue = `(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|['"][^\n]*|(?:\\.|\S)+)`

var patterns = []pattern{
	// scheme://user:password@host → scheme://user:***@host. The password runs
	// to the last '@' before whitespace or '/', as URL parsers split there; a
	// password containing an unescaped '@' is therefore fully hidden.
	{regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^\s/]*@`), "${1}:" + Mask + "@"},
	// PGPASSWORD=..., password=... (libpq keyword form), POSTGRES_PASSWORD=...
	{regexp.MustCompile(`(?i)\b([A-Za-z0-9_]*PASS(?:WORD|WD)[ \t]*=[ \t]*)` + passwordValue), "${1}" + Mask},
	// "password": "..." in JSON output.
	{regexp.MustCompile(`(?i)("[A-Za-z0-9_]*pass(?:word|wd)"\s*:\s*)"(?:[^"\\]|\\.)*"`), `${1}"` + Mask + `"`},
	// SQL: [ENCRYPTED] PASSWORD 'value' (standard, E'' or $$ strings; an
	// unterminated literal is hidden to the end of the line).
	{regexp.MustCompile(`(?i)(\bPASSWORD\s+)(?:E?'(?:[^'\\]|''|\\.)*'|\$\$.*?\$\$|E?'[^\n]*)`), "${1}'" + Mask + "'"},
	// SCRAM verifiers: SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>.
	{regexp.MustCompile(`SCRAM-SHA-256\$[A-Za-z0-9+/=:$]+`), Mask},
	// capydb tokens. The short prefixes need a word boundary and a minimum
	// length so words like "snap_shot" survive.
	{regexp.MustCompile(`capy_live_[A-Za-z0-9]+|whsec_[A-Za-z0-9]+|\b(?:ap|clp|eph)_[A-Za-z0-9]{20,}`), Mask},
}

// Scrubber replaces known secrets and credential patterns. The zero value and
// a nil *Scrubber apply the patterns only. It is safe for concurrent use.
type Scrubber struct {
	mu       sync.RWMutex
	secrets  map[string]struct{}
	replacer *strings.Replacer // nil when there are no secrets
}

// New returns a Scrubber that hides the given secrets and the default patterns.
func New(secrets ...string) *Scrubber {
	s := &Scrubber{}
	s.Add(secrets...)
	return s
}

// Default returns a Scrubber with the patterns only.
func Default() *Scrubber { return &Scrubber{} }

// Add registers more secrets. Secrets shorter than MinSecretLen are ignored.
// The URL-escaped forms are registered too, since a password usually reaches
// logs inside a connection URL.
func (s *Scrubber) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, sec := range secrets {
		if len(sec) < MinSecretLen {
			continue
		}
		for _, v := range variants(sec) {
			if _, ok := s.secrets[v]; ok {
				continue
			}
			if s.secrets == nil {
				s.secrets = make(map[string]struct{})
			}
			s.secrets[v] = struct{}{}
			changed = true
		}
	}
	if changed {
		s.rebuild()
	}
}

// variants returns sec and its escaped spellings.
func variants(sec string) []string {
	out := []string{sec}
	user := strings.TrimPrefix(url.UserPassword("", sec).String(), ":")
	for _, v := range []string{url.QueryEscape(sec), url.PathEscape(sec), user} {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// rebuild sorts secrets longest first: strings.Replacer tries its arguments in
// order at each position, so a secret that contains another one is replaced
// whole instead of leaving its remainder visible.
func (s *Scrubber) rebuild() {
	list := make([]string, 0, len(s.secrets))
	for sec := range s.secrets {
		list = append(list, sec)
	}
	slices.SortFunc(list, func(a, b string) int {
		if c := cmp.Compare(len(b), len(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(list))
	for _, sec := range list {
		pairs = append(pairs, sec, Mask)
	}
	s.replacer = strings.NewReplacer(pairs...)
}

// String returns text with every known secret and credential pattern replaced.
func (s *Scrubber) String(text string) string {
	if text == "" {
		return text
	}
	if s != nil {
		s.mu.RLock()
		r := s.replacer
		s.mu.RUnlock()
		if r != nil {
			text = r.Replace(text)
		}
	}
	for _, p := range patterns {
		text = p.re.ReplaceAllString(text, p.repl)
	}
	return text
}
