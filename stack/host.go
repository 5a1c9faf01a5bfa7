package stack

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/uexec/uexec/internal/sys"
	"golang.org/x/sys/unix"
)

var host struct {
	once sync.Once
	h    Host
	err  error
}

// HostFromProc returns this machine's aux vector values, read once from
// /proc/self/auxv, and the vdso geometry from /proc/self/maps. Every process
// on the machine gets the same values, so the result is cached; each call
// returns a fresh copy that the caller may change.
func HostFromProc() (*Host, error) {
	host.once.Do(func() {
		host.h, host.err = readHost("/proc/self/auxv", "/proc/self/maps")
	})
	if host.err != nil {
		return nil, host.err
	}
	h := host.h
	return &h, nil
}

func readHost(auxvPath, mapsPath string) (Host, error) {
	var h Host
	b, err := sys.ReadFile(auxvPath)
	if errors.Is(err, fs.ErrPermission) && auxvPath == "/proc/self/auxv" {
		// Not dumpable (started set-id): /proc/self/auxv is root's,
		// mode 0400. The runtime keeps a copy.
		b, err = runtimeAuxv()
	}
	if err != nil {
		return h, err
	}
	aux, err := ParseAuxv(b)
	if err != nil {
		return h, fmt.Errorf("%s: %w", auxvPath, err)
	}
	for _, e := range aux {
		switch e.Type {
		case AT_HWCAP:
			h.HWCap = e.Value
		case AT_HWCAP2:
			h.HWCap2 = e.Value
		case AT_MINSIGSTKSZ:
			h.MinSigStkSz, h.HasMinSigStkSz = e.Value, true
		case AT_CLKTCK:
			h.ClkTck = e.Value
		case AT_RSEQ_FEATURE_SIZE:
			h.RseqFeatureSize, h.HasRseq = e.Value, true
		case AT_RSEQ_ALIGN:
			h.RseqAlign = e.Value
		case AT_SYSINFO_EHDR:
			h.SysinfoEHDR = e.Value
		}
	}
	maps, err := sys.ReadFile(mapsPath)
	if err != nil {
		return h, err
	}
	h.VvarLen, h.VDSOLen, h.VDSORegions, err = vdsoGeometry(bytes.NewReader(maps))
	if err != nil {
		return h, fmt.Errorf("%s: %w", mapsPath, err)
	}
	return h, nil
}

// runtimeAuxv is this process's aux vector as the Go runtime kept it, in
// /proc/PID/auxv's form.
func runtimeAuxv() ([]byte, error) {
	pairs, err := unix.Auxv()
	if err != nil {
		return nil, err
	}
	var b []byte
	for _, p := range append(pairs, [2]uintptr{0, 0}) {
		b = binary.NativeEndian.AppendUint64(b, uint64(p[0]))
		b = binary.NativeEndian.AppendUint64(b, uint64(p[1]))
	}
	return b, nil
}

// ParseAuxv decodes a 64-bit aux vector as /proc/PID/auxv holds it: native
// endian (type, value) pairs, up to and not including AT_NULL.
func ParseAuxv(b []byte) ([]AuxEntry, error) {
	var out []AuxEntry
	for len(b) >= 16 {
		t := AuxType(binary.NativeEndian.Uint64(b))
		v := binary.NativeEndian.Uint64(b[8:])
		if t == AT_NULL {
			return out, nil
		}
		out = append(out, AuxEntry{t, v})
		b = b[16:]
	}
	return out, fmt.Errorf("aux vector without AT_NULL")
}

// vdsoGeometry finds [vvar]/[vvar_vclock] and [vdso] in a maps file, and
// the labelled regions they consist of.
func vdsoGeometry(r io.Reader) (vvarLen, vdsoLen uint64, regions []VDSORegion, err error) {
	var vvarStart uint64
	haveVvar := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Bytes()
		f := strings.Fields(string(line))
		if len(f) < 6 {
			continue
		}
		name := f[5]
		if !strings.HasPrefix(name, "[vvar") && name != "[vdso]" {
			continue
		}
		rng, _, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			continue
		}
		lo, hi, ok := strings.Cut(string(rng), "-")
		if !ok {
			return 0, 0, nil, fmt.Errorf("bad range %q", rng)
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end < start {
			return 0, 0, nil, fmt.Errorf("bad range %q", rng)
		}
		if !haveVvar {
			vvarStart, haveVvar = start, true
		}
		regions = append(regions, VDSORegion{Off: start - vvarStart, Len: end - start, Perms: f[1], Label: name})
		if name == "[vdso]" {
			vvarLen = start - vvarStart
			return vvarLen, end - start, regions, nil
		}
	}
	return 0, 0, nil, sc.Err()
}
