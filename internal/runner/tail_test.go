package runner

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{"empty", 4, nil, ""},
		{"under size", 8, []string{"abc"}, "abc"},
		{"exactly size", 4, []string{"abcd"}, "abcd"},
		{"fill in pieces", 4, []string{"ab", "cd"}, "abcd"},
		{"overflow in one write", 4, []string{"abcdefg"}, "defg"},
		{"overflow across writes", 4, []string{"abc", "def"}, "cdef"},
		{"wrap several times", 3, []string{"ab", "cd", "ef", "gh", "i"}, "ghi"},
		{"big write after wrap", 4, []string{"abc", "de", "123456789"}, "6789"},
		{"single bytes", 3, []string{"a", "b", "c", "d", "e"}, "cde"},
		{"empty writes", 3, []string{"", "ab", "", "cd", ""}, "bcd"},
		{"write equal to size after wrap", 3, []string{"abcd", "xyz"}, "xyz"},
		{"zero size", 0, []string{"abc"}, ""},
		{"negative size", -5, []string{"abc"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewTailBuffer(tt.size)
			total := 0
			for _, w := range tt.writes {
				n, err := b.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
				total += len(w)
			}
			if got := b.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			if !bytes.Equal(b.Bytes(), []byte(tt.want)) {
				t.Fatalf("Bytes() = %q", b.Bytes())
			}
			if b.Len() != len(tt.want) {
				t.Fatalf("Len() = %d, want %d", b.Len(), len(tt.want))
			}
			if b.Total() != int64(total) {
				t.Fatalf("Total() = %d, want %d", b.Total(), total)
			}
			if b.Truncated() != (total > len(tt.want)) {
				t.Fatalf("Truncated() = %v", b.Truncated())
			}
		})
	}
}

// TestTailBufferMatchesSuffix compares against the obvious implementation for
// many write patterns.
func TestTailBufferMatchesSuffix(t *testing.T) {
	data := []byte(strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 50))
	for _, size := range []int{1, 7, 64, 100, 1000, 5000} {
		for _, chunk := range []int{1, 3, 64, 99, 1001, 4096} {
			b := NewTailBuffer(size)
			for i := 0; i < len(data); i += chunk {
				b.Write(data[i:min(i+chunk, len(data))])
			}
			want := data[max(0, len(data)-size):]
			if !bytes.Equal(b.Bytes(), want) {
				t.Fatalf("size %d chunk %d: got %q..., want %q...", size, chunk, b.Bytes()[:min(10, b.Len())], want[:min(10, len(want))])
			}
		}
	}
}

func TestTailBufferBytesIsCopy(t *testing.T) {
	b := NewTailBuffer(4)
	b.Write([]byte("abcd"))
	got := b.Bytes()
	got[0] = 'X'
	if b.String() != "abcd" {
		t.Fatal("Bytes() aliases the internal buffer")
	}
}

func TestTailBufferConcurrent(t *testing.T) {
	b := NewTailBuffer(100)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				io.WriteString(b, "line\n")
				_ = b.Len()
			}
		})
	}
	wg.Wait()
	if b.Total() != 4*1000*5 || b.Len() != 100 {
		t.Fatalf("Total %d Len %d", b.Total(), b.Len())
	}
}
