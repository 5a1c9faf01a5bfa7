package uexec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
)

// ChildName is the name in this process of path, an exec's path as a child
// whose descriptors are files (nil: this process's standard files) and whose
// working directory is dir ("": this process's) resolves it: through its own
// descriptors (/dev/fd/N, /proc/self/fd/N, /dev/stdin: files[N]) or working
// directory (/proc/self/cwd: dir), which are other files here. Other paths,
// and a descriptor the child inherits under the same number (N past files,
// from 3), are themselves; one the child will not have (a nil file, 0 to 2
// past files) is ENOENT, as its exec would find it. Plan the exec of the
// name returned, then give the plan back the name asked (Plan.Renamed).
func ChildName(path string, files []*os.File, dir string) (string, error) {
	if files == nil {
		files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	name := path
	if !strings.HasPrefix(name, "/") && dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		name = abs + "/" + name // fd/3 from /dev
	}
	name = squash(name)
	for std, n := range map[string]string{"/dev/stdin": "0", "/dev/stdout": "1", "/dev/stderr": "2"} {
		if name == std {
			name = "/proc/self/fd/" + n
		}
	}
	for _, pre := range []string{"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"} {
		rest, ok := strings.CutPrefix(name, pre)
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
	for _, pre := range []string{"/proc/self/cwd", "/proc/thread-self/cwd"} {
		if rest, ok := strings.CutPrefix(name, pre); ok && dir != "" && (rest == "" || rest[0] == '/') {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return "", err
			}
			return abs + rest, nil
		}
	}
	return path, nil
}

// squash removes the empty and "." components of an absolute path, which
// name what they follow ("/dev//fd/./3" is /dev/fd/3); ".." is left, as
// its parent depends on the symbolic links before it.
func squash(p string) string {
	if !strings.HasPrefix(p, "/") || !strings.Contains(p, "//") && !strings.Contains(p, "/./") && !strings.HasSuffix(p, "/.") {
		return p
	}
	parts := strings.Split(p, "/")
	out := parts[:1]
	for i, c := range parts[1:] {
		if c == "" && i < len(parts)-2 || c == "." {
			continue
		}
		out = append(out, c)
	}
	return strings.Join(out, "/")
}

// checkChdir returns chdir(2)'s error for dir in this process, without
// changing directory: the lookup's (ENOENT, ENOTDIR, ELOOP,
// ENAMETOOLONG, EACCES on the way), ENOTDIR for what is not a directory,
// EACCES without search permission. Its text is os/exec's for a child's
// failed chdir.
func checkChdir(dir string) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Faccessat2(fd, "", unix.X_OK, unix.AT_EACCESS|unix.AT_EMPTY_PATH)
		unix.Close(fd)
	}
	if err != nil {
		return &os.PathError{Op: "chdir", Path: dir, Err: err}
	}
	return nil
}
