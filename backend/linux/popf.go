//go:build linux && amd64

package linux

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/vm"
)

// The stub's last `ret` can enter the program through a `popfq; ret`
// (9d c3) of the new image itself, with 0x202 on the stack for popfq: then
// rflags is the kernel's 0x202 at the program's first instruction, not the
// 0x246 that the register clears before that `ret` leave (see
// internal/planstub). The vdso has no such bytes; an image often has:
// glibc's ld.so, so every dynamic glibc program.

// popfMaxScan bounds how much of one executable mapping is searched (once
// per file and range: popfCache): ld.so has its bytes ~100 KiB in, a Go
// program's runtime ~350 KiB in.
const popfMaxScan = 512 << 10

// popfCache holds, per executable range of a file, where the first
// `popfq; ret` of it is (-1: none in the range searched).
var popfCache sync.Map // popfKey -> int64

type popfKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns: a file changed in place is searched again
	off, n       uint64
}

// findPopf returns the planned address of a `popfq; ret` in an executable
// file mapping of plan, with the 8 bytes there (which the stub checks
// before it uses them: the file could have changed in place), where no
// later command of the plan maps over or clears those bytes. ok is false
// when the image has none.
func findPopf(plan *execsw.Plan) (at vm.Addr, want uint64, ok bool) {
	// The interpreter first: one ld.so serves every dynamic program.
	var prog *vm.File
	for _, cmd := range plan.Cmds {
		if cmd.Op == vm.OpMap && prog == nil {
			prog = cmd.File
		}
	}
	for pass := range 2 {
		if at, want, ok := popfPass(plan, func(f *vm.File) bool { return (f != prog) == (pass == 0) }); ok {
			return at, want, ok
		}
	}
	return 0, 0, false
}

// popfPass is findPopf over the mappings of the files use accepts.
func popfPass(plan *execsw.Plan, use func(*vm.File) bool) (at vm.Addr, want uint64, ok bool) {
	for i, cmd := range plan.Cmds {
		// Readable too: the stub reads the bytes first, and an
		// execute-only mapping (PROT_EXEC alone, with protection keys)
		// faults on a read.
		if cmd.Op != vm.OpMap || cmd.Prot&vm.ProtExec == 0 || cmd.Prot&vm.ProtRead == 0 || cmd.File == nil ||
			cmd.Offset >= uint64(cmd.File.Size) || !use(cmd.File) {
			continue
		}
		n := min(cmd.Len, uint64(cmd.File.Size)-cmd.Offset, popfMaxScan)
		off, ok := popfIn(cmd.File, cmd.Offset, n)
		if !ok || off+8 > n {
			continue
		}
		var b [8]byte
		if _, err := cmd.File.R.ReadAt(b[:], int64(cmd.Offset+off)); err != nil || b[0] != 0x9d || b[1] != 0xc3 {
			continue // changed since it was searched: the next exec searches again
		}
		g := vm.Range{Start: cmd.Addr + vm.Addr(off), End: cmd.Addr + vm.Addr(off) + 8}
		later := false
		for _, c := range plan.Cmds[i+1:] {
			if (vm.Range{Start: c.Addr, End: c.Addr + vm.Addr(c.Len)}).Overlaps(g) {
				later = true
			}
		}
		if !later {
			return g.Start, binary.LittleEndian.Uint64(b[:]), true
		}
	}
	return 0, 0, false
}

// popfIn returns the offset from off of the first `popfq; ret` in the n
// bytes of f at off.
func popfIn(f *vm.File, off, n uint64) (uint64, bool) {
	key := popfKey{dev: f.Dev, ino: f.Ino, size: f.Size, off: off, n: n}
	fd, ok := f.R.(interface{ Fd() uintptr })
	var st unix.Stat_t
	if !ok || unix.Fstat(int(fd.Fd()), &st) != nil {
		return 0, false
	}
	key.mtime, key.ctime = st.Mtim.Nano(), st.Ctim.Nano()
	v, ok := popfCache.Load(key)
	if !ok {
		v, ok = popfDisk.lookup(key)
	}
	if ok {
		at := v.(int64)
		if at < 0 {
			return 0, false
		}
		var b [2]byte
		if _, err := f.R.ReadAt(b[:], int64(off)+at); err == nil && b == [2]byte{0x9d, 0xc3} {
			popfCache.Store(key, at)
			return uint64(at), true
		}
	}
	at := searchPopf(int(fd.Fd()), off, n)
	popfCache.Store(key, at)
	popfDisk.add(key, at)
	return uint64(at), at >= 0
}

// popfDisk keeps popfCache's findings across processes (uexec run --once
// is a new one each time, and a cold search of ld.so costs it ~50 µs): a
// line per file range in the stub's cache directory. What it says is a
// hint: the bytes are read from the file before they are used.
var popfDisk popfFile

type popfFile struct {
	once  sync.Once
	mu    sync.Mutex // lines and order (Spawn may run concurrently)
	path  string
	lines map[popfKey]int64
	order []popfKey // the file's lines, oldest first
}

// popfFileLines bounds the file: the most recent ranges only (reading it
// is on every exec in place's way).
const popfFileLines = 8

func (d *popfFile) load() {
	d.once.Do(func() {
		stub, err := planStub.cachedFile()
		if err != nil {
			return
		}
		d.path = filepath.Join(filepath.Dir(stub), "popf-1")
		d.lines = map[popfKey]int64{}
		if b, err := sys.ReadFileNoFollow(d.path); err == nil && len(b) <= 1024 {
			d.parse(b)
		}
	})
}

// parse adds the lines of a popf file's contents b: "dev ino size mtime
// ctime off n at", in hex (at -1: none); a line that is not is skipped.
func (d *popfFile) parse(b []byte) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 8 {
			continue
		}
		var v [8]int64
		for i := range v {
			u, err := strconv.ParseUint(f[i], 16, 64)
			if err != nil {
				v[0] = -1
				break
			}
			v[i] = int64(u)
		}
		if k := (popfKey{uint64(v[0]), uint64(v[1]), v[2], v[3], v[4], uint64(v[5]), uint64(v[6])}); v[0] >= 0 {
			if _, dup := d.lines[k]; !dup {
				d.order = append(d.order, k)
			}
			d.lines[k] = v[7]
		}
	}
}

// format is the file's contents for the lines in order.
func (d *popfFile) format() string {
	var b strings.Builder
	for _, k := range d.order {
		fmt.Fprintf(&b, "%x %x %x %x %x %x %x %x\n", k.dev, k.ino, uint64(k.size), uint64(k.mtime), uint64(k.ctime), k.off, k.n, uint64(d.lines[k]))
	}
	return b.String()
}

func (d *popfFile) lookup(k popfKey) (any, bool) {
	d.load()
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.lines[k]
	return at, ok
}

func (d *popfFile) add(k popfKey, at int64) {
	d.load()
	if d.path == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.lines[k]; ok {
		if old == at {
			return
		}
		d.order = slices.DeleteFunc(d.order, func(o popfKey) bool { return o == k })
	}
	d.lines[k] = at
	d.order = append(d.order, k)
	if len(d.order) > popfFileLines {
		d.order = d.order[len(d.order)-popfFileLines:]
	}
	// Whole, by rename: another uexec may be reading or writing it.
	f, err := os.CreateTemp(filepath.Dir(d.path), "popf-*")
	if err != nil {
		return
	}
	_, err = f.WriteString(d.format())
	if cerr := f.Close(); err == nil && cerr == nil && os.Rename(f.Name(), d.path) == nil {
		return
	}
	os.Remove(f.Name())
}

// searchPopf searches the n bytes of file fd at off (a page boundary) for
// `popfq; ret`, mapped: the page cache's pages in place, without a copy
// (a dynamic program's ld.so has ~150 KiB of text). A file truncated
// meanwhile faults: the fault panics (debug.SetPanicOnFault) and the
// search finds nothing.
func searchPopf(fd int, off, n uint64) (at int64) {
	if off%vm.PageSize != 0 {
		return -1
	}
	m, err := unix.Mmap(fd, int64(off), int(n), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return -1
	}
	defer unix.Munmap(m)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			at = -1
		}
	}()
	return int64(bytes.Index(m, []byte{0x9d, 0xc3}))
}
