//go:build linux && amd64

package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/uexec/uexec/internal/sys"
)

// gadgetDisk keeps gadgetCache's findings across processes (uexec run
// --once is a new one each time, and a cold search of ld.so costs it ~50
// µs): a line per file range in the stub's cache directory. What it says
// is a hint: the bytes are read from the file before they are used.
var gadgetDisk gadgetFile

type gadgetFile struct {
	once  sync.Once
	mu    sync.Mutex // lines and order (Spawn may run concurrently)
	path  string
	lines map[gadgetKey]gadgetOffs
	order []gadgetKey // the file's lines, oldest first
}

// gadgetFileLines bounds the file: the most recent ranges only (reading it
// is on every exec in place's way).
const gadgetFileLines = 8

// gadgetFields is the number of fields of a line: the key's 7, the offsets.
const gadgetFields = 7 + len(gadgetOffs{})

func (d *gadgetFile) load() {
	d.once.Do(func() {
		stub, err := planStub.cachedFile()
		if err != nil {
			return
		}
		d.path = filepath.Join(filepath.Dir(stub), "gadgets-1")
		d.lines = map[gadgetKey]gadgetOffs{}
		if b, err := sys.ReadFileNoFollow(d.path); err == nil && len(b) <= 2048 {
			d.parse(b)
		}
	})
}

// parse adds the lines of a gadget file's contents b: "dev ino size mtime
// ctime off n" and the gadgetOffs, in hex (-1 as ffffffffffffffff); a line
// that is not is skipped.
func (d *gadgetFile) parse(b []byte) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != gadgetFields {
			continue
		}
		var v [gadgetFields]int64
		bad := false
		for i := range v {
			u, err := strconv.ParseUint(f[i], 16, 64)
			bad = bad || err != nil
			v[i] = int64(u)
		}
		if bad || v[0] < 0 {
			continue
		}
		k := gadgetKey{uint64(v[0]), uint64(v[1]), v[2], v[3], v[4], uint64(v[5]), uint64(v[6])}
		if _, dup := d.lines[k]; !dup {
			d.order = append(d.order, k)
		}
		d.lines[k] = gadgetOffs(v[7:])
	}
}

// format is the file's contents for the lines in order.
func (d *gadgetFile) format() string {
	var b strings.Builder
	for _, k := range d.order {
		fmt.Fprintf(&b, "%x %x %x %x %x %x %x", k.dev, k.ino, uint64(k.size), uint64(k.mtime), uint64(k.ctime), k.off, k.n)
		for _, at := range d.lines[k] {
			fmt.Fprintf(&b, " %x", uint64(at))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (d *gadgetFile) lookup(k gadgetKey) (gadgetOffs, bool) {
	d.load()
	d.mu.Lock()
	defer d.mu.Unlock()
	offs, ok := d.lines[k]
	return offs, ok
}

func (d *gadgetFile) add(k gadgetKey, offs gadgetOffs) {
	d.load()
	if d.path == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.lines[k]; ok {
		if old == offs {
			return
		}
		d.order = slices.DeleteFunc(d.order, func(o gadgetKey) bool { return o == k })
	}
	d.lines[k] = offs
	d.order = append(d.order, k)
	if len(d.order) > gadgetFileLines {
		d.order = d.order[len(d.order)-gadgetFileLines:]
	}
	// Whole, by rename: another uexec may be reading or writing it.
	f, err := os.CreateTemp(filepath.Dir(d.path), "gadgets-*")
	if err != nil {
		return
	}
	_, err = f.WriteString(d.format())
	if cerr := f.Close(); err == nil && cerr == nil && os.Rename(f.Name(), d.path) == nil {
		return
	}
	os.Remove(f.Name())
}
