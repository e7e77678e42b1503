package runner

import "sync"

// TailBuffer is an io.Writer that keeps only the last Size bytes written to
// it, so a command that prints gigabytes cannot exhaust memory while we still
// keep the end of its output, where errors are reported.
type TailBuffer struct {
	mu    sync.Mutex
	size  int
	buf   []byte // grows up to size, then used as a ring
	start int    // once full: index of the oldest byte (and the next write)
	total int64
}

// NewTailBuffer returns a TailBuffer keeping the last size bytes. Memory grows
// with the output, up to size.
func NewTailBuffer(size int) *TailBuffer {
	return &TailBuffer{size: max(size, 0)}
}

// Write never fails, so it cannot make a child process block or die.
func (b *TailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(n)
	if b.size == 0 {
		return n, nil
	}
	if len(p) >= b.size { // p alone fills the buffer
		if cap(b.buf) < b.size {
			b.buf = make([]byte, b.size)
		}
		b.buf = b.buf[:b.size]
		copy(b.buf, p[len(p)-b.size:])
		b.start = 0
		return n, nil
	}
	if len(b.buf) < b.size { // still filling
		k := min(b.size-len(b.buf), len(p))
		b.buf = append(b.buf, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 { // full: overwrite the oldest bytes
		k := copy(b.buf[b.start:], p)
		p = p[k:]
		b.start = (b.start + k) % b.size
	}
	return n, nil
}

// Bytes returns a copy of the retained bytes, oldest first.
func (b *TailBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]byte, 0, len(b.buf))
	out = append(out, b.buf[b.start:]...)
	return append(out, b.buf[:b.start]...)
}

// String returns the retained bytes as a string.
func (b *TailBuffer) String() string { return string(b.Bytes()) }

// Len returns the number of retained bytes.
func (b *TailBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

// Total returns the number of bytes ever written.
func (b *TailBuffer) Total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// Truncated reports whether bytes were dropped from the front.
func (b *TailBuffer) Truncated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total > int64(len(b.buf))
}
