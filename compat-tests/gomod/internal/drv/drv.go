// Package drv holds what the compat-suite drivers in this module share: the
// JSON spec and JSON-lines output conventions of compat_lib (the same as the
// Debian sarama driver in ../go and the kafkajs driver in ../node).
//
// A driver runs as `DRIVER CMD SPEC.json`; it prints one JSON object per line
// ("ack", "record", "assigned", ... lines, then one "result" line) and exits
// non-zero on any error, with the error in the result line.
package drv

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Msg is one message of compat_lib.msgs_to_spec: key, value and header values
// are base64 in JSON, and null stays nil (a NULL key, value or header value).
type Msg struct {
	I int         `json:"i"`
	P int32       `json:"p"`
	K []byte      `json:"k"`
	V []byte      `json:"v"`
	H [][]*string `json:"h"` // [name, base64 value or null]
	T int64       `json:"t"` // CreateTime, ms
}

// Header is one decoded header of a Msg.
type Header struct {
	Key   string
	Value []byte
}

// Headers decodes m.H.
func (m Msg) Headers() ([]Header, error) {
	out := make([]Header, 0, len(m.H))
	for _, h := range m.H {
		if len(h) != 2 || h[0] == nil {
			return nil, fmt.Errorf("message %d: header must be [name, value]", m.I)
		}
		var val []byte
		if h[1] != nil {
			v, err := base64.StdEncoding.DecodeString(*h[1])
			if err != nil {
				return nil, fmt.Errorf("message %d: header %s: %w", m.I, *h[0], err)
			}
			val = v
		}
		out = append(out, Header{*h[0], val})
	}
	return out, nil
}

// Time is m.T as a time.Time.
func (m Msg) Time() time.Time { return time.UnixMilli(m.T) }

// Record builds a "record" line in the shape compat_lib's readers expect
// (p, o, k, v, h, t; tt is the timestamp type when the client exposes it).
func Record(p int32, o int64, k, v []byte, hs []Header, ts time.Time) map[string]any {
	h := make([][]any, 0, len(hs))
	for _, x := range hs {
		h = append(h, []any{x.Key, x.Value})
	}
	return map[string]any{"type": "record", "p": p, "o": o, "k": k, "v": v, "h": h, "t": ts.UnixMilli()}
}

var outMu sync.Mutex

// Emit prints one JSON line (safe from several goroutines).
func Emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"type":"result","ok":false,"error":%q}`, err.Error()))
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

// Result prints the final line: ok plus the given fields.
func Result(fields map[string]any) {
	out := map[string]any{"type": "result", "ok": true}
	for k, v := range fields {
		out[k] = v
	}
	Emit(out)
}

// Fail prints a failed result line and exits 1.
func Fail(err error) {
	Emit(map[string]any{"type": "result", "ok": false, "error": err.Error()})
	os.Exit(1)
}

// ReadSpec decodes the JSON spec file into `into`, failing the driver if it
// cannot.
func ReadSpec(path string, into any) {
	data, err := os.ReadFile(path)
	if err != nil {
		Fail(fmt.Errorf("reading spec %s: %w", path, err))
	}
	if err := json.Unmarshal(data, into); err != nil {
		Fail(fmt.Errorf("parsing spec %s: %w", path, err))
	}
}

// StopWhenFileExists closes the returned channel once path exists (how pytest
// tells a long-running group member to leave).
func StopWhenFileExists(path string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for {
			if _, err := os.Stat(path); err == nil {
				close(ch)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return ch
}

// Run dispatches os.Args[1] to one of cmds, each reading its own spec from
// os.Args[2].
func Run(name string, cmds map[string]func(specPath string) error) {
	if len(os.Args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s CMD SPEC.json\n", name)
		os.Exit(2)
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		Fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
	if err := cmd(os.Args[2]); err != nil {
		Fail(err)
	}
}
