package uexec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
)

// childName is the name in this process of path, an exec's path as the
// child of a Spawn resolves it: through its own descriptors (/dev/fd/N,
// /proc/self/fd/N: files[N], its standard files when files is nil) or its
// working directory (/proc/self/cwd: dir), which are other files here.
// Other paths, and a descriptor the child inherits under the same number
// (N past files, from 3), are themselves; one the child will not have (a
// nil file, 0 to 2 past files) is ENOENT, as its exec would find it.
func childName(path string, files []*os.File, dir string) (string, error) {
	if files == nil {
		files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	for _, pre := range []string{"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"} {
		rest, ok := strings.CutPrefix(path, pre)
		if !ok {
			continue
		}
		num, tail, sub := strings.Cut(rest, "/")
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || strconv.Itoa(n) != num {
			return path, nil // no descriptor's name: its lookup fails as the child's would
		}
		if n >= len(files) && n >= 3 {
			return path, nil
		}
		if n >= len(files) || files[n] == nil {
			return "", &execsw.ExecError{Path: path, Reason: "no such descriptor in the child", Err: unix.ENOENT}
		}
		host := "/proc/self/fd/" + strconv.Itoa(int(files[n].Fd()))
		if sub {
			host += "/" + tail
		}
		return host, nil
	}
	if rest, ok := strings.CutPrefix(path, "/proc/self/cwd"); ok && dir != "" && (rest == "" || rest[0] == '/') {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		return abs + rest, nil
	}
	return path, nil
}
