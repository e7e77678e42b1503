package ids

import (
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// decode is the inverse of encode, used to check the bit layout.
func decode(t *testing.T, s string) (uint64, [10]byte) {
	t.Helper()
	if len(s) != SuffixLen {
		t.Fatalf("decode: length %d", len(s))
	}
	var hi, lo uint64
	for i := 0; i < len(s); i++ {
		v := uint64(strings.IndexByte(alphabet, s[i]))
		if v > 31 {
			t.Fatalf("decode: bad char %q", s[i])
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | v
	}
	var rnd [10]byte
	rnd[0], rnd[1] = byte(hi>>8), byte(hi)
	for i := 9; i >= 2; i-- {
		rnd[i] = byte(lo)
		lo >>= 8
	}
	return hi >> 16, rnd
}

func TestEncode(t *testing.T) {
	ff := [10]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	tests := []struct {
		name string
		ts   uint64
		rnd  [10]byte
		want string
	}{
		{"zero", 0, [10]byte{}, "00000000000000000000000000"},
		{"max", maxTime, ff, "7zzzzzzzzzzzzzzzzzzzzzzzzz"},
		{"random one", 0, [10]byte{9: 1}, "00000000000000000000000001"},
		{"timestamp one", 1, [10]byte{}, "00000000010000000000000000"},
		// Timestamp from the ULID spec example 01ARYZ6S41TSV4RRFFQ69G5FAV.
		{"ulid spec ts", 1469918176385, [10]byte{}, "01aryz6s410000000000000000"},
		{"high random bits", 0, [10]byte{0: 0x80}, "0000000000g000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encode(tt.ts, tt.rnd)
			if got != tt.want {
				t.Fatalf("encode = %q, want %q", got, tt.want)
			}
			ts, rnd := decode(t, got)
			if ts != tt.ts || rnd != tt.rnd {
				t.Fatalf("round trip = %d %x, want %d %x", ts, rnd, tt.ts, tt.rnd)
			}
		})
	}
}

func TestNewFormat(t *testing.T) {
	for _, prefix := range []string{"prj_", "db_", "", "x"} {
		id := New(prefix)
		if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+SuffixLen {
			t.Fatalf("New(%q) = %q", prefix, id)
		}
		if !Valid(prefix, id) {
			t.Fatalf("Valid(%q, %q) = false", prefix, id)
		}
	}
	ts, _ := decode(t, strings.TrimPrefix(New("prj_"), "prj_"))
	now := uint64(time.Now().UnixMilli())
	if ts > now || now-ts > 60_000 {
		t.Fatalf("timestamp %d not close to now %d", ts, now)
	}
}

// fixedGen returns a generator with a settable clock and deterministic random
// bytes (each fill returns the next counter value in every byte).
func fixedGen(ms *int64) *generator {
	var n byte
	return &generator{
		now: func() time.Time { return time.UnixMilli(*ms) },
		fill: func(b []byte) {
			n++
			for i := range b {
				b[i] = n
			}
		},
	}
}

func TestMonotonic(t *testing.T) {
	ms := int64(1_700_000_000_000)
	g := fixedGen(&ms)

	a := g.next()
	b := g.next() // same millisecond: random part + 1
	tsA, rA := decode(t, a)
	tsB, rB := decode(t, b)
	if tsA != tsB || tsA != uint64(ms) {
		t.Fatalf("timestamps %d %d, want %d", tsA, tsB, ms)
	}
	want := rA
	increment(&want)
	if rB != want {
		t.Fatalf("same-ms random = %x, want %x", rB, want)
	}

	ms -= 5_000 // clock stepped backwards: keep the last timestamp
	c := g.next()
	if tsC, _ := decode(t, c); tsC != tsA || c <= b {
		t.Fatalf("after backwards step got %q (ts %d), previous %q", c, tsC, b)
	}

	ms += 10_000 // clock moves forward: fresh random part
	d := g.next()
	tsD, rD := decode(t, d)
	if tsD != uint64(ms) || rD == rB || d <= c {
		t.Fatalf("after forward step got %q ts %d", d, tsD)
	}
}

func TestMonotonicOverflow(t *testing.T) {
	ms := int64(1_000)
	g := fixedGen(&ms)
	g.next()
	for i := range g.lastRand {
		g.lastRand[i] = 0xff
	}
	prev := encode(g.lastMs, g.lastRand)
	got := g.next()
	ts, _ := decode(t, got)
	if ts != 1_001 || got <= prev {
		t.Fatalf("overflow: got %q ts %d, previous %q", got, ts, prev)
	}
}

func TestIncrement(t *testing.T) {
	tests := []struct {
		in, want [10]byte
		ok       bool
	}{
		{[10]byte{}, [10]byte{9: 1}, true},
		{[10]byte{9: 0xff}, [10]byte{8: 1}, true},
		{[10]byte{0: 1, 9: 0xff}, [10]byte{0: 1, 8: 1}, true},
		{[10]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, [10]byte{}, false},
	}
	for _, tt := range tests {
		b := tt.in
		if ok := increment(&b); ok != tt.ok || b != tt.want {
			t.Errorf("increment(%x) = %x, %v; want %x, %v", tt.in, b, ok, tt.want, tt.ok)
		}
	}
}

func TestSortsByCreation(t *testing.T) {
	ms := int64(1_600_000_000_000)
	g := fixedGen(&ms)
	var got []string
	for i := 0; i < 300; i++ {
		if i%7 == 0 {
			ms++
		}
		got = append(got, g.next())
	}
	if !sort.StringsAreSorted(got) {
		t.Fatal("ids are not sorted by creation")
	}
}

func TestNewUniqueConcurrent(t *testing.T) {
	const workers, per = 8, 2000
	var mu sync.Mutex
	seen := make(map[string]bool, workers*per)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make([]string, 0, per)
			for range per {
				local = append(local, New("t_"))
			}
			if !sort.StringsAreSorted(local) {
				t.Error("ids from one goroutine are not increasing")
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %q", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
}

func TestValid(t *testing.T) {
	good := "prj_01aryz6s41tsv4rrffq69g5fav"
	tests := []struct {
		name, prefix, id string
		want             bool
	}{
		{"ok", "prj_", good, true},
		{"empty prefix", "", strings.TrimPrefix(good, "prj_"), true},
		{"wrong prefix", "db_", good, false},
		{"missing prefix", "prj_", strings.TrimPrefix(good, "prj_"), false},
		{"prefix without underscore", "prj", good, false},
		{"too short", "prj_", good[:len(good)-1], false},
		{"too long", "prj_", good + "0", false},
		{"upper case", "prj_", strings.ToUpper(good[:4]) + strings.ToUpper(good[4:]), false},
		{"excluded letter i", "prj_", good[:len(good)-1] + "i", false},
		{"excluded letter l", "prj_", good[:len(good)-1] + "l", false},
		{"excluded letter o", "prj_", good[:len(good)-1] + "o", false},
		{"excluded letter u", "prj_", good[:len(good)-1] + "u", false},
		{"first char overflows", "prj_", "prj_8" + good[5:], false},
		{"max", "prj_", "prj_7zzzzzzzzzzzzzzzzzzzzzzzzz", true},
		{"punctuation", "prj_", good[:len(good)-1] + "-", false},
		{"empty", "prj_", "", false},
		{"non ascii", "prj_", good[:len(good)-2] + "é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.prefix, tt.id); got != tt.want {
				t.Fatalf("Valid(%q, %q) = %v, want %v", tt.prefix, tt.id, got, tt.want)
			}
		})
	}
}

func TestRandomBase62(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 20, 32, 64, 1000} {
		s := RandomBase62(n)
		want := max(n, 0)
		if len(s) != want {
			t.Fatalf("RandomBase62(%d) has length %d", n, len(s))
		}
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(base62, s[i]) < 0 {
				t.Fatalf("RandomBase62(%d) contains %q", n, s[i])
			}
		}
	}
	if RandomBase62(32) == RandomBase62(32) {
		t.Fatal("two 32-char tokens are equal")
	}
}

func TestRandomBase62Rejection(t *testing.T) {
	tests := []struct {
		name  string
		bytes []byte // repeated as the random source
		want  string
	}{
		// 248..255 must be skipped, never mapped to 0..7.
		{"rejects high bytes", []byte{248, 255, 0, 61, 62, 247}, "0z0z0z"},
		{"maps modulo 62", []byte{10, 36, 123}, "AazAaz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := 0
			fill := func(b []byte) {
				for j := range b {
					b[j] = tt.bytes[i%len(tt.bytes)]
					i++
				}
			}
			if got := randomBase62(6, fill); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A source that is rejected most of the time still terminates.
	calls := 0
	fill := func(b []byte) {
		calls++
		for j := range b {
			b[j] = 250
		}
		if calls > 3 {
			b[0] = 1
		}
	}
	if got := randomBase62(3, fill); got != "111" {
		t.Fatalf("got %q", got)
	}
}

func TestRandomBase62Distribution(t *testing.T) {
	const n = 62 * 2000
	s := RandomBase62(n)
	counts := make(map[byte]int)
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	if len(counts) != 62 {
		t.Fatalf("only %d distinct characters", len(counts))
	}
	// Expected 2000 each; sd ~ 44. A biased modulo would push '0'..'7' to ~2060,
	// so check the low characters are not systematically over-represented.
	low := 0
	for _, c := range []byte(base62[:8]) {
		low += counts[c]
	}
	if low > 8*2000+400 {
		t.Fatalf("first 8 characters over-represented: %d", low)
	}
	for c, k := range counts {
		if k < 1700 || k > 2300 {
			t.Fatalf("character %q appears %d times", c, k)
		}
	}
}
