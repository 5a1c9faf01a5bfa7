package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/stack"
	"golang.org/x/sys/unix"
)

// The JSON form of a plan. Addresses, lengths, offsets and aux values are
// strings of hex digits with a 0x prefix, so that no reader loses the bits
// of a 64-bit value; counts are numbers. README.md documents the schema.
type planJSON struct {
	Program      string         `json:"program"`
	Argv         []string       `json:"argv"`
	EmulRoot     string         `json:"emul_root,omitempty"`
	Chain        []execsw.Link  `json:"chain"`
	Interp       *string        `json:"interp"`
	Entry        string         `json:"entry,omitempty"`
	ProgramEntry string         `json:"program_entry,omitempty"`
	Compat       bool           `json:"compat"`
	VMCmds       []vmcmdJSON    `json:"vmcmds"`
	Maps         []string       `json:"maps"`
	Registers    *registersJSON `json:"registers,omitempty"`
	Stack        *stackJSON     `json:"stack,omitempty"`
	Auxv         []auxJSON      `json:"auxv"`
	MM           *mmJSON        `json:"mm,omitempty"`
	Cred         *credJSON      `json:"cred,omitempty"`
	Comm         string         `json:"comm,omitempty"`
	Fatal        *fatalJSON     `json:"fatal,omitempty"`
	Error        *errorJSON     `json:"error,omitempty"`
}

// fatalJSON describes an exec that fails after the point of no return.
type fatalJSON struct {
	Signal  string `json:"signal"`
	Message string `json:"message"`
}

type vmcmdJSON struct {
	Op     string   `json:"op"`
	Addr   string   `json:"addr"`
	Len    string   `json:"len"`
	Prot   string   `json:"prot"`
	Offset string   `json:"offset"`
	File   *string  `json:"file"`
	Flags  []string `json:"flags"`
}

type registersJSON struct {
	RIP    string `json:"rip"`
	RSP    string `json:"rsp"`
	RFLAGS string `json:"rflags"`
	CS     string `json:"cs"`
	SS     string `json:"ss"`
	Others string `json:"others"`
}

type stackJSON struct {
	Top    string   `json:"top"`
	SP     string   `json:"sp"`
	Argc   int      `json:"argc"`
	Argv   []string `json:"argv"`
	Envp   []string `json:"envp"`
	ExecFn string   `json:"execfn"`
	Bytes  int      `json:"bytes"`
}

type auxJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type mmJSON struct {
	StartCode  string `json:"start_code"`
	EndCode    string `json:"end_code"`
	StartData  string `json:"start_data"`
	EndData    string `json:"end_data"`
	StartBrk   string `json:"start_brk"`
	Brk        string `json:"brk"`
	StartStack string `json:"start_stack"`
	ArgStart   string `json:"arg_start"`
	ArgEnd     string `json:"arg_end"`
	EnvStart   string `json:"env_start"`
	EnvEnd     string `json:"env_end"`
}

type credJSON struct {
	UID    uint32 `json:"uid"`
	EUID   uint32 `json:"euid"`
	GID    uint32 `json:"gid"`
	EGID   uint32 `json:"egid"`
	Secure bool   `json:"secure"`
	Note   string `json:"note,omitempty"`
}

type errorJSON struct {
	Errno   string `json:"errno"`
	Message string `json:"message"`
}

func hex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

func toJSON(p *execsw.Plan, prog string, argv []string) *planJSON {
	j := &planJSON{Program: prog, Argv: argv, Chain: p.Chain, Compat: p.Compat, Comm: p.Comm, EmulRoot: p.EmulRoot}
	if j.Argv == nil {
		j.Argv = []string{}
	}
	if p.Interp != "" {
		j.Interp = &p.Interp
	}
	j.Entry = hex(uint64(p.Entry))
	j.ProgramEntry = hex(uint64(p.ELF.Entry))
	j.VMCmds = []vmcmdJSON{}
	for _, c := range p.Cmds {
		vc := vmcmdJSON{Op: c.Op.String(), Addr: hex(uint64(c.Addr)), Len: hex(c.Len), Prot: c.Prot.String(),
			Offset: hex(c.Offset), Flags: []string{}}
		if c.File != nil {
			f := c.File.Name()
			vc.File = &f
		}
		if c.Flags != 0 {
			vc.Flags = strings.Split(c.Flags.String(), "|")
		}
		j.VMCmds = append(j.VMCmds, vc)
	}
	if p.Fatal != nil {
		j.Fatal = &fatalJSON{Signal: "SIGSEGV", Message: p.Fatal.Error()}
		j.Maps, j.Auxv = []string{}, []auxJSON{}
		return j
	}
	j.Maps = planMaps(p)
	if p.Stack != nil {
		s := p.Stack
		j.Registers = &registersJSON{RIP: hex(uint64(p.Entry)), RSP: hex(uint64(s.SP)), RFLAGS: "0x202",
			CS: "0x33", SS: "0x2b", Others: "0"}
		if p.Compat {
			j.Registers.CS = "0x23"
		}
		j.Stack = &stackJSON{Top: hex(uint64(p.Image.Top)), SP: hex(uint64(s.SP)), Argc: s.Argc,
			Argv: p.Image.Args.Argv, Envp: p.Image.Args.Envp, ExecFn: p.Image.Args.ExecFn, Bytes: len(s.Bytes)}
		if j.Stack.Envp == nil {
			j.Stack.Envp = []string{}
		}
		for _, a := range s.Auxv {
			j.Auxv = append(j.Auxv, auxJSON{Type: a.Type.String(), Value: hex(a.Value)})
		}
	}
	m := p.MM
	j.MM = &mmJSON{hex(uint64(m.StartCode)), hex(uint64(m.EndCode)), hex(uint64(m.StartData)), hex(uint64(m.EndData)),
		hex(uint64(m.StartBrk)), hex(uint64(m.Brk)), hex(uint64(m.StartStack)), hex(uint64(m.ArgStart)),
		hex(uint64(m.ArgEnd)), hex(uint64(m.EnvStart)), hex(uint64(m.EnvEnd))}
	c := p.Cred
	j.Cred = &credJSON{UID: c.UID, EUID: c.EUID, GID: c.GID, EGID: c.EGID, Secure: c.Secure, Note: c.Ignored}
	return j
}

func cmdPlan(stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	keepOnSIGPIPE()
	o, err := parseOptions(args, "plan")
	if err != nil {
		if err == errHelp {
			io.WriteString(stdout, usage())
			return 0
		}
		fmt.Fprintf(stderr, "uexec plan: %v%s\nTry 'uexec help' for more information.\n", err, errnoSuffix(err))
		return exitUsage
	}
	sw, err := o.exsw(stderr)
	if err != nil {
		usageError(stderr, "plan", err)
		return exitUsage
	}
	if code := o.readImage(stdin, stderr); code != 0 {
		return code
	}
	// The kernel's verdict: no /bin/sh fallback, which is execvp's.
	p, req, err := o.plan(sw, false)
	kernelOnly := false
	if err != nil && req != nil {
		// An execute-only program: the kernel's verdict, which is the
		// exec's (its errno, or that it is the kernel's to make).
		if kp, kerr := sw.KernelOnlyPlan(req, err); kp != nil {
			kernelOnly = true
			kp.Close()
		} else {
			err = kerr
		}
	}
	if err != nil {
		if o.json {
			j := &planJSON{Program: o.argv[0], Argv: o.argv, Chain: []execsw.Link{}, VMCmds: []vmcmdJSON{},
				Maps: []string{}, Auxv: []auxJSON{}, Error: &errorJSON{Errno: errnoName(err), Message: err.Error()},
				EmulRoot: o.emulRoot}
			writeJSON(stdout, j)
		}
		code := failure(stderr, o.argv[0], err)
		if errors.Is(err, unix.ENOEXEC) && o.image == nil {
			// (A program from standard input has no name for /bin/sh to
			// read: run refuses it as fexecve(3) would.)
			fmt.Fprintf(stderr, "uexec: note: execvp(3), env(1) and 'uexec run' hand a file the kernel refuses with ENOEXEC to /bin/sh\n")
		}
		if kernelOnly {
			fmt.Fprintf(stderr, "uexec: note: uexec may not read what the kernel maps unread (an execute-only file): the exec is the kernel's, which 'uexec run' lets it make\n")
		}
		return code
	}
	defer p.Close()
	if o.json {
		writeJSON(stdout, toJSON(p, req.Path, req.Argv))
		return 0
	}
	printPlan(stdout, p, req)
	return 0
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// printPlan writes the human form of a plan.
func printPlan(w io.Writer, p *execsw.Plan, req *execsw.Request) {
	fmt.Fprintf(w, "exec %s\n", strconv.Quote(req.Path))
	if p.EmulRoot != "" {
		fmt.Fprintf(w, "emulation root: %s\n", p.EmulRoot)
	}
	fmt.Fprintf(w, "\nhandler chain:\n")
	for i, l := range p.Chain {
		fmt.Fprintf(w, "  %d. %-7s %s", i+1, l.Format, l.Path)
		if l.Name != "" {
			fmt.Fprintf(w, " (rule %s)", l.Name)
		}
		if l.Host != "" {
			fmt.Fprintf(w, " (under the emulation root: %s)", l.Host)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nvm commands:\n")
	for _, c := range p.Cmds {
		fmt.Fprintf(w, "  %v\n", c)
	}
	if p.Fatal != nil {
		fmt.Fprintf(w, "\npast the point of no return: %v\nthe process is killed by SIGSEGV\n", p.Fatal)
		return
	}
	fmt.Fprintf(w, "\nmemory map:\n")
	for _, m := range planMaps(p) {
		fmt.Fprintf(w, "  %s\n", m)
	}
	fmt.Fprintf(w, "\nentry: %#x", uint64(p.Entry))
	if p.Interp != "" {
		fmt.Fprintf(w, " (interpreter %s; program entry %#x)", p.Interp, uint64(p.ELF.Entry))
	}
	fmt.Fprintf(w, "\nregisters: rip=%#x rsp=%#x rflags=0x202, all others 0, fs/gs base 0\n", uint64(p.Entry), uint64(p.Stack.SP))
	fmt.Fprintf(w, "comm: %s\n", p.Comm)
	c := p.Cred
	fmt.Fprintf(w, "credentials: uid=%d euid=%d gid=%d egid=%d secure=%v", c.UID, c.EUID, c.GID, c.EGID, c.Secure)
	if c.Ignored != "" {
		fmt.Fprintf(w, " (set-id ignored: %s)", c.Ignored)
	}
	m := p.MM
	fmt.Fprintf(w, "\nmm: code %#x-%#x data %#x-%#x brk %#x\n", uint64(m.StartCode), uint64(m.EndCode),
		uint64(m.StartData), uint64(m.EndData), uint64(m.StartBrk))
	printStack(w, p)
}

func printStack(w io.Writer, p *execsw.Plan) {
	s := p.Stack
	word := uint64(8)
	if p.Compat {
		word = 4
	}
	fmt.Fprintf(w, "\nstack: top %#x sp %#x (%d bytes)\n", uint64(p.Image.Top), uint64(s.SP), len(s.Bytes))
	fmt.Fprintf(w, "  %#x  argc %d\n", uint64(s.SP), s.Argc)
	for i, a := range p.Image.Args.Argv {
		fmt.Fprintf(w, "  %#x  argv[%d] %s\n", uint64(s.ArgvAddr)+uint64(i)*word, i, strconv.Quote(a))
	}
	for i, e := range p.Image.Args.Envp {
		fmt.Fprintf(w, "  %#x  envp[%d] %s\n", uint64(s.EnvpAddr)+uint64(i)*word, i, strconv.Quote(e))
	}
	fmt.Fprintf(w, "\nauxv at %#x:\n", uint64(s.AuxvAddr))
	for _, a := range s.Auxv {
		fmt.Fprintf(w, "  %-20s %s\n", a.Type, auxValue(p, a))
	}
}

func auxValue(p *execsw.Plan, a stack.AuxEntry) string {
	v := hex(a.Value)
	switch a.Type {
	case stack.AT_EXECFN:
		return v + " " + strconv.Quote(p.Image.Args.ExecFn)
	case stack.AT_PLATFORM:
		return v + " " + strconv.Quote(p.Image.Platform)
	case stack.AT_PAGESZ, stack.AT_PHENT, stack.AT_PHNUM, stack.AT_UID, stack.AT_EUID, stack.AT_GID,
		stack.AT_EGID, stack.AT_SECURE, stack.AT_CLKTCK, stack.AT_MINSIGSTKSZ, stack.AT_RSEQ_FEATURE_SIZE, stack.AT_RSEQ_ALIGN:
		return strconv.FormatUint(a.Value, 10)
	}
	return v
}

// planMaps renders the memory map the plan gives the new image; a plan
// whose commands cannot be applied (a fatal ELF) shows the error instead.
func planMaps(p *execsw.Plan) []string {
	m, err := p.Maps()
	if err != nil {
		return []string{"(" + err.Error() + ")"}
	}
	return m
}
