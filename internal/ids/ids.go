// Package ids generates and validates the prefixed identifiers used for every
// resource (prj_..., db_..., ...) and random tokens.
//
// An id is a caller-supplied prefix followed by 26 lower-case Crockford base32
// characters encoding a 48-bit Unix millisecond timestamp and 80 random bits
// (the ULID layout). Ids therefore sort lexically by creation time, which keeps
// B-tree inserts local and makes "newest first" listings cheap.
package ids

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"
)

// SuffixLen is the length of the part of an id that follows the prefix.
const SuffixLen = 26

// alphabet is Crockford's base32 in lower case: no i, l, o, u, so ids cannot
// be misread when copied by hand.
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// maxTime is the largest timestamp that fits in 48 bits.
const maxTime = 1<<48 - 1

// generator holds the state needed to keep ids monotonic within one
// millisecond; the clock and random source are fields so tests can pin them.
type generator struct {
	mu       sync.Mutex
	lastMs   uint64
	lastRand [10]byte
	now      func() time.Time
	fill     func([]byte)
}

var defaultGen = &generator{now: time.Now, fill: cryptoFill}

// cryptoFill reads from crypto/rand, which never fails on supported platforms
// (since Go 1.24 it crashes the program instead of returning an error).
func cryptoFill(b []byte) { _, _ = rand.Read(b) }

// New returns prefix followed by a fresh 26-character time-ordered suffix.
// The prefix is used verbatim: pass "prj_", not "prj".
func New(prefix string) string {
	return prefix + defaultGen.next()
}

// next returns the encoded suffix. When the clock has not advanced since the
// previous id (same millisecond, or the clock stepped backwards) the previous
// random part is incremented instead of redrawn, so ids from one process are
// strictly increasing.
func (g *generator) next() string {
	ms := uint64(g.now().UnixMilli())
	if ms > maxTime {
		ms = maxTime
	}
	g.mu.Lock()
	if ms <= g.lastMs {
		if !increment(&g.lastRand) {
			// 2^80 ids in one millisecond cannot happen in practice; if it
			// does, borrow the next millisecond rather than repeat an id.
			if g.lastMs < maxTime {
				g.lastMs++
			}
			g.fill(g.lastRand[:])
		}
	} else {
		g.lastMs = ms
		g.fill(g.lastRand[:])
	}
	ts, rnd := g.lastMs, g.lastRand
	g.mu.Unlock()
	return encode(ts, rnd)
}

// increment adds one to the big-endian number in b and reports false on
// overflow (b wrapped to zero).
func increment(b *[10]byte) bool {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return true
		}
	}
	return false
}

// encode renders the 128-bit value ts<<80 | rnd as 26 base32 characters; the
// first character carries only 3 bits, so it is always 0-7.
func encode(ts uint64, rnd [10]byte) string {
	hi := ts<<16 | uint64(rnd[0])<<8 | uint64(rnd[1])
	var lo uint64
	for _, b := range rnd[2:] {
		lo = lo<<8 | uint64(b)
	}
	var out [SuffixLen]byte
	for i := range out {
		shift := uint(5 * (SuffixLen - 1 - i))
		var v uint64
		switch {
		case shift >= 64:
			v = hi >> (shift - 64)
		case shift+5 <= 64:
			v = lo >> shift
		default: // the 5 bits straddle hi and lo
			v = lo>>shift | hi<<(64-shift)
		}
		out[i] = alphabet[v&31]
	}
	return string(out[:])
}

// Valid reports whether id is prefix followed by a well-formed suffix. It is a
// syntax check for rejecting garbage early (e.g. in URL paths), not a proof
// that the id exists.
func Valid(prefix, id string) bool {
	suffix, ok := strings.CutPrefix(id, prefix)
	if !ok || len(suffix) != SuffixLen {
		return false
	}
	if suffix[0] > '7' { // would overflow 128 bits
		return false
	}
	for i := 0; i < len(suffix); i++ {
		if strings.IndexByte(alphabet, suffix[i]) < 0 {
			return false
		}
	}
	return true
}

// RandomBase62 returns n characters drawn uniformly from [0-9A-Za-z] using
// crypto/rand, for tokens and passwords. Bytes >= 248 are rejected rather
// than reduced modulo 62, which would make the first 8 characters more likely.
func RandomBase62(n int) string {
	return randomBase62(n, cryptoFill)
}

func randomBase62(n int, fill func([]byte)) string {
	if n <= 0 {
		return ""
	}
	const limit = 256 - 256%len(base62) // 248
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/8+8) // ~3% are rejected; a little slack avoids extra reads
	for len(out) < n {
		fill(buf)
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, base62[int(b)%len(base62)])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}
