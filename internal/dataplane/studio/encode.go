package studio

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Values arrive in Postgres's text format (the runner pins DateStyle ISO,
// IntervalStyle postgres and bytea_output hex for the transaction) and are
// encoded per API.md §4.11. A value that does not parse as its type expects
// (a caller changed DateStyle, an infinite timestamp, a BC date) is sent as
// its text: the encoder never fails.

type encoding uint8

const (
	encText        encoding = iota // JSON string of the text form
	encInt                         // smallint, integer: the text is a JSON integer
	encBigint                      // number within ±(2^53−1), string beyond
	encFloat                       // number; NaN and ±Infinity as strings
	encNumeric                     // exact decimal string
	encBool                        // t/f
	encJSON                        // the JSON text itself
	encTimestamptz                 // RFC 3339 in UTC
	encTimestamp                   // ISO 8601 with a T
	encArray                       // JSON array of the element's encoding
)

// typeInfo says how to encode one type OID.
type typeInfo struct {
	enc   encoding
	elem  uint32 // arrays: the element type
	delim byte   // arrays: the element delimiter (',' except box)
}

// builtin covers the types whose OIDs are fixed; others (domains, enums,
// arrays of user types) are looked up in pg_type by the runner.
var builtin = map[uint32]typeInfo{
	16: {enc: encBool}, 20: {enc: encBigint}, 21: {enc: encInt}, 23: {enc: encInt},
	700: {enc: encFloat}, 701: {enc: encFloat}, 1700: {enc: encNumeric},
	114: {enc: encJSON}, 3802: {enc: encJSON}, 1184: {enc: encTimestamptz}, 1114: {enc: encTimestamp},
	// text-form types listed so they need no lookup
	17: {}, 18: {}, 19: {}, 25: {}, 26: {}, 1042: {}, 1043: {}, 1082: {}, 1083: {}, 1186: {}, 1266: {},
	2950: {}, 142: {}, 790: {}, 869: {}, 650: {}, 829: {}, 1560: {}, 1562: {}, 3614: {}, 3615: {},
	600: {}, 601: {}, 602: {}, 603: {}, 604: {}, 628: {}, 718: {}, 4072: {}, 3904: {}, 3906: {},
	3908: {}, 3910: {}, 3912: {}, 3926: {}, 2249: {}, 2278: {}, 705: {}, 24: {}, 2205: {}, 2206: {},
	// arrays of the above
	1000: arr(16), 1016: arr(20), 1005: arr(21), 1007: arr(23), 1021: arr(700), 1022: arr(701),
	1231: arr(1700), 199: arr(114), 3807: arr(3802), 1185: arr(1184), 1115: arr(1114),
	1001: arr(17), 1002: arr(18), 1003: arr(19), 1009: arr(25), 1028: arr(26), 1014: arr(1042),
	1015: arr(1043), 1182: arr(1082), 1183: arr(1083), 1187: arr(1186), 1270: arr(1266), 2951: arr(2950),
	143: arr(142), 791: arr(790), 1041: arr(869), 651: arr(650), 1040: arr(829), 1561: arr(1560),
	1563: arr(1562), 3643: arr(3614), 3645: arr(3615), 1020: {enc: encArray, elem: 603, delim: ';'},
}

func arr(elem uint32) typeInfo { return typeInfo{enc: encArray, elem: elem, delim: ','} }

// maxSafeInt is 2^53−1, the largest integer every JSON reader keeps exactly.
const maxSafeInt = 1<<53 - 1

// encoder turns text values into JSON with a byte budget per value.
type encoder struct {
	types    map[uint32]typeInfo
	maxValue int  // bytes of one value's text kept; longer ones are cut
	cut      bool // some value was cut
}

func (e *encoder) info(oid uint32) typeInfo {
	if t, ok := e.types[oid]; ok {
		return t
	}
	if t, ok := builtin[oid]; ok {
		return t
	}
	return typeInfo{}
}

// appendValue appends the JSON encoding of one value (nil = NULL).
func (e *encoder) appendValue(b []byte, oid uint32, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	if len(v) > e.maxValue {
		// Too big to pass on whole: the start of its text, marked. A JSON or
		// array value cut in the middle would not parse, so it becomes text.
		e.cut = true
		s := strings.ToValidUTF8(string(v[:e.maxValue]), "") + "… [value cut: " + strconv.Itoa(len(v)) + " bytes]"
		return appendString(b, s)
	}
	t := e.info(oid)
	return e.appendText(b, t, v)
}

func (e *encoder) appendText(b []byte, t typeInfo, v []byte) []byte {
	s := string(v)
	switch t.enc {
	case encInt:
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return append(b, s...)
		}
	case encBigint:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n <= maxSafeInt && n >= -maxSafeInt {
			return append(b, s...)
		}
	case encFloat:
		if _, err := strconv.ParseFloat(s, 64); err == nil && s != "NaN" && s != "Infinity" && s != "-Infinity" {
			return append(b, s...)
		}
	case encBool:
		switch s {
		case "t":
			return append(b, "true"...)
		case "f":
			return append(b, "false"...)
		}
	case encJSON:
		return append(b, s...)
	case encTimestamptz:
		if ts, ok := parseTimestamptz(s); ok {
			return appendString(b, ts.UTC().Format(time.RFC3339Nano))
		}
	case encTimestamp:
		if len(s) >= 19 && s[10] == ' ' && !strings.HasSuffix(s, " BC") {
			return appendString(b, s[:10]+"T"+s[11:])
		}
	case encArray:
		if out, ok := e.appendArray(b, t, s); ok {
			return out
		}
	}
	return appendString(b, s)
}

// timestamptz text with DateStyle ISO: 2024-01-02 03:04:05.123456+05:30
// (the offset may have seconds for historical zones).
var tstzLayouts = []string{"2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07:00:00"}

func parseTimestamptz(s string) (time.Time, bool) {
	for _, l := range tstzLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// appendArray parses an array literal ({1,2,NULL}, {{"a b",c}}, with an
// optional [1:2]= dimension prefix) and encodes its elements.
func (e *encoder) appendArray(b []byte, t typeInfo, s string) ([]byte, bool) {
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "=")
		if i < 0 {
			return b, false
		}
		s = s[i+1:]
	}
	if !strings.HasPrefix(s, "{") {
		return b, false // int2vector and friends print without braces
	}
	elem := e.info(t.elem)
	p := arrayParser{s: s, delim: t.delim}
	out, ok := p.parse(b, func(b []byte, v []byte) []byte {
		if v == nil {
			return append(b, "null"...)
		}
		return e.appendText(b, elem, v)
	})
	if !ok || p.i != len(s) {
		return b, false
	}
	return out, true
}

type arrayParser struct {
	s     string
	i     int
	delim byte
}

// parse reads one {…} level at p.i.
func (p *arrayParser) parse(b []byte, elem func([]byte, []byte) []byte) ([]byte, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return b, false
	}
	p.i++
	b = append(b, '[')
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return append(b, ']'), true
	}
	for first := true; ; first = false {
		if !first {
			b = append(b, ',')
		}
		if p.i >= len(p.s) {
			return b, false
		}
		var ok bool
		switch p.s[p.i] {
		case '{':
			b, ok = p.parse(b, elem)
		case '"':
			var v []byte
			v, ok = p.quoted()
			b = elem(b, v)
		default:
			start := p.i
			for p.i < len(p.s) && p.s[p.i] != p.delim && p.s[p.i] != '}' {
				p.i++
			}
			v := p.s[start:p.i]
			if v == "NULL" {
				b = elem(b, nil)
			} else {
				b = elem(b, []byte(v))
			}
			ok = true
		}
		if !ok || p.i >= len(p.s) {
			return b, false
		}
		switch p.s[p.i] {
		case p.delim:
			p.i++
		case '}':
			p.i++
			return append(b, ']'), true
		default:
			return b, false
		}
	}
}

func (p *arrayParser) quoted() ([]byte, bool) {
	p.i++ // opening quote
	var v []byte
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '\\':
			if p.i+1 >= len(p.s) {
				return nil, false
			}
			v = append(v, p.s[p.i+1])
			p.i += 2
		case '"':
			p.i++
			if v == nil {
				v = []byte{}
			}
			return v, true
		default:
			v = append(v, c)
			p.i++
		}
	}
	return nil, false
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (invalid UTF-8 becomes U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// EncodeRows encodes rows of text values the way the runner does (for
// benchmarks; types outside the built-in table are sent as text).
func EncodeRows(names []string, oids []uint32, rows [][][]byte) []json.RawMessage {
	enc := &encoder{maxValue: maxValueBytes}
	keys := make([][]byte, len(names))
	for i, n := range names {
		keys[i] = appendString(nil, n)
	}
	out := make([]json.RawMessage, 0, len(rows))
	for _, r := range rows {
		out = append(out, enc.appendRow(keys, oids, r))
	}
	return out
}

// appendRow encodes one row as a JSON object in column order.
func (e *encoder) appendRow(keys [][]byte, oids []uint32, values [][]byte) []byte {
	row := make([]byte, 0, 64)
	row = append(row, '{')
	for i, v := range values {
		if i > 0 {
			row = append(row, ',')
		}
		row = append(row, keys[i]...)
		row = append(row, ':')
		row = e.appendValue(row, oids[i], v)
	}
	return append(row, '}')
}
