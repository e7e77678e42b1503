package typegen

import (
	"bytes"
	"encoding/json"
	"go/token"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// words splits a database name into words: at anything but letters and
// digits, and where a lower-case letter or digit meets an upper-case one.
func words(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, string(cur))
			cur = nil
		}
	}
	var prev rune
	for _, r := range s {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r) && len(cur) > 0 && (unicode.IsLower(prev) || unicode.IsDigit(prev)):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
		prev = r
	}
	flush()
	return out
}

// pascal is UpperCamelCase; it always starts with an upper-case letter
// (a name starting with a digit or a caseless letter gets an X), so Go
// exports it.
func pascal(s string) string {
	var b strings.Builder
	for _, w := range words(s) {
		r := []rune(strings.ToLower(w))
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	out := b.String()
	if out == "" {
		return "X"
	}
	if first := []rune(out)[0]; !unicode.IsUpper(first) {
		out = "X" + out
	}
	return out
}

// camel is lowerCamelCase, for TypeScript variables.
func camel(s string) string {
	p := pascal(s)
	r := []rune(p)
	if r[0] == 'X' && len(r) > 1 && !unicode.IsUpper(r[1]) && !unicode.IsLower(r[1]) {
		return "x" + string(r[1:])
	}
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// namer hands out unique names, suffixing 2, 3, ... on collisions.
type namer map[string]bool

func (n namer) get(base string) string {
	name := base
	for i := 2; n[name]; i++ {
		name = base + strconv.Itoa(i)
	}
	n[name] = true
	return name
}

// jsString is a double-quoted string literal valid in TypeScript (and in
// Python: JSON escapes are a subset of both).
func jsString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimRight(buf.String(), "\n")
}

var plainKey = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// tsKey is a property key: bare when it can be, quoted otherwise. Reserved
// words are valid property names in TypeScript.
func tsKey(s string) string {
	if plainKey.MatchString(s) {
		return s
	}
	return jsString(s)
}

var tsReserved = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`break case catch class const continue debugger default delete do else enum export
		extends false finally for function if import in instanceof new null return super switch this throw true try
		typeof var void while with as implements interface let package private protected public static yield any
		boolean constructor declare get module require number set string symbol type from of async await never
		unknown object bigint undefined Json Database sql z`) {
		tsReserved[w] = true
	}
}

// tsIdent makes a TypeScript variable name.
func tsIdent(s string) string {
	id := camel(s)
	if tsReserved[id] {
		id += "_"
	}
	return id
}

// goInitialisms are written in capitals in Go names (ID, not Id).
var goInitialisms = map[string]string{"id": "ID", "url": "URL", "uuid": "UUID", "ip": "IP", "json": "JSON",
	"api": "API", "http": "HTTP", "sql": "SQL", "uri": "URI"}

// goName is an exported Go identifier.
func goName(s string) string {
	var b strings.Builder
	for _, w := range words(s) {
		if up, ok := goInitialisms[strings.ToLower(w)]; ok {
			b.WriteString(up)
		} else {
			b.WriteString(pascal(w))
		}
	}
	id := b.String()
	if id == "" || !unicode.IsUpper([]rune(id)[0]) {
		id = pascal(s)
	}
	if token.IsKeyword(id) {
		id += "_"
	}
	return id
}

func validGoPackage(p string) bool {
	if p == "" || token.IsKeyword(p) || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

var pyKeywords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`False None True and as assert async await break class continue def del elif else
		except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield
		match case type`) {
		pyKeywords[w] = true
	}
}

// pyIdent makes a Python attribute or class name from a database name:
// the name itself when it is a valid identifier, else letters, digits and
// underscores; keywords get a trailing underscore. It never starts with an
// underscore (pydantic treats those as private).
func pyIdent(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	id := b.String()
	if id == "" || unicode.IsDigit([]rune(id)[0]) || id[0] == '_' {
		id = "f" + id
	}
	if pyKeywords[id] {
		id += "_"
	}
	return id
}

// comment renders text as line comments with prefix, one per line.
func comment(prefix, text string) string {
	if text == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		// Only what stays on the line: \r, U+2028 and U+2029 end a line
		// in JavaScript or Python, so a comment must never carry them.
		l = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				return ' '
			}
			return r
		}, l)
		l = strings.TrimRight(strings.ReplaceAll(l, "*/", "* /"), " ")
		if l == "" {
			b.WriteString(prefix + "\n")
			continue
		}
		b.WriteString(prefix + " " + l + "\n")
	}
	return b.String()
}
