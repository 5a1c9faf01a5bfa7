package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// The command's options and commands as tables: --help (usage), the man
// page (uexec man) and the shell completions (uexec completion bash|zsh)
// are all rendered from them.

// optSpec is one option. Help lines after the first continue it.
type optSpec struct {
	short, long string
	arg         string // the value's name; "" for none
	argOptional bool   // --long[=ARG]: the value only with "="
	complete    string // what the value is: "file", "dir", "var" or "" (anything)
	help        []string
}

// optGroup is a section of options.
type optGroup struct {
	title string // "plan and run", "plan", "run"
	opts  []optSpec
}

var optGroups = []optGroup{
	{"plan and run", []optSpec{
		{short: "-i", long: "--ignore-environment", help: []string{"start with an empty environment"}},
		{short: "-u", long: "--unset", arg: "NAME", complete: "var", help: []string{"remove NAME from the environment"}},
		{short: "-C", long: "--chdir", arg: "DIR", complete: "dir", help: []string{"change to DIR first"}},
		{short: "-a", long: "--argv0", arg: "NAME", help: []string{"pass NAME as argv[0] instead of PROGRAM"}},
		{long: "--no-random", help: []string{"no address randomisation (like setarch -R)"}},
		{long: "--emul-root", arg: "DIR", complete: "dir", help: []string{"look absolute program and interpreter names up",
			"under DIR first, then in / (NetBSD's emulation root)"}},
		{long: "--veriexec", arg: "FILE", complete: "file", help: []string{"check every exec against FILE's fingerprints",
			"(NetBSD's veriexec signatures format)"}},
		{long: "--veriexec-strict", arg: "N", help: []string{"0 learning, 1 IDS, 2 IPS (the default), 3 lockdown"}},
		{long: "--binfmt", arg: "RULE", help: []string{"a binfmt_misc rule (:name:type:offset:magic:mask:",
			"interpreter:flags) for every exec; repeatable"}},
		{long: "--binfmt-dir", arg: "DIR", complete: "dir", help: []string{"the rules of DIR's *.conf files (binfmt.d)"}},
		{long: "--binfmt-system", help: []string{"the rules systemd-binfmt would register"}},
		{long: "--segvguard", arg: "MAX,EXPIRY,SUSPEND", argOptional: true, help: []string{
			"refuse (EPERM) for SUSPEND s a program that died of",
			"a core-dumping signal MAX times in EXPIRY s",
			"(NetBSD's PaX Segvguard; default 5,120,600)"}},
	}},
	{"plan", []optSpec{
		{long: "--json", help: []string{"print the plan as JSON (schema in README.md)"}},
	}},
	{"run", []optSpec{
		{short: "-v", long: "--verbose", help: []string{"log each step of the build (the stub's program too)",
			"and say what differs from a kernel exec, and why"}},
		{long: "--once", help: []string{"load only PROGRAM, in uexec's place (same pid, no",
			"ptrace); the kernel does the execs it makes"}},
		{long: "--log-execs", arg: "FILE", complete: "file", help: []string{"one JSON line per exec of the process tree and",
			"per process at its end (\"-\": stderr); see uexec log"}},
		{long: "--no-wait-descendants", help: []string{"exit when PROGRAM does; descendants still running",
			"continue, their later execs done by the kernel"}},
		{long: "--build", help: []string{"uexec builds every exec of the tree it can make",
			"exact, not only those its rules or policies change"}},
		{long: "--stop-at-entry", help: []string{"leave PROGRAM stopped at its first instruction",
			"(state T, untraced) for gdb -p; SIGCONT runs it"}},
		{long: "--stop-at-exec", arg: "GLOB", help: []string{"the same for each exec of the tree whose path, as",
			"passed or resolved, matches GLOB (path.Match)"}},
		{long: "--veriexec-learn", arg: "FILE", complete: "file", help: []string{"write FILE: the signatures of every file the tree",
			"exec'd, for --veriexec"}},
	}},
}

// cmdSpec is one command.
type cmdSpec struct {
	name, args, help string
}

var cmdSpecs = []cmdSpec{
	{"plan", "[OPTIONS] [NAME=VALUE]... [--] PROGRAM [ARG]...", "show what an exec of PROGRAM would do, without running anything"},
	{"run", "[OPTIONS] [NAME=VALUE]... [--] [PROGRAM [ARG]...]", "run PROGRAM with the exec done by uexec (without one, print the environment it would get)"},
	{"log", "tree|compdb|trace FILE", "read a --log-execs file: its tree, compile_commands.json, trace"},
	{"completion", "bash|zsh", "print the shell completion script"},
	{"man", "", "print the manual page (roff)"},
	{"help", "", "show this help"},
}

var logCommands = []string{"tree", "compdb", "trace"}

const usageEpilogue = `PROGRAM "-" reads the program (an ELF or a #! script) from standard input and
execs it as fexecve(3) of a sealed memfd would (/dev/fd/3, comm memfd:stdin).

By default run follows the whole process tree, untraced: every execve and
execveat of PROGRAM and its descendants reaches uexec through a seccomp
filter (seccomp user notification; nothing else is stopped) and is done by
uexec, or by the kernel where only it is exact (--verbose says why), and run
exits when the last of them has.`

// left is the option as the usage shows it: "-C, --chdir DIR".
func (o optSpec) left() string {
	s := "    "
	if o.short != "" {
		s = o.short + ", "
	}
	s += o.long
	switch {
	case o.arg != "" && o.argOptional:
		s += "[=" + o.arg + "]"
	case o.arg != "":
		s += " " + o.arg
	}
	return s
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: uexec COMMAND [OPTIONS] [NAME=VALUE]... [--] PROGRAM [ARG]...\n\nCommands:\n")
	for _, c := range cmdSpecs {
		fmt.Fprintf(&b, "  %-10s  %s\n", c.name, c.help)
	}
	const col = 29
	item := func(left string, help []string) {
		left = "  " + left
		if len(left) > col-2 {
			b.WriteString(left + "\n" + strings.Repeat(" ", col))
		} else {
			b.WriteString(left + strings.Repeat(" ", col-len(left)))
		}
		b.WriteString(strings.Join(help, "\n"+strings.Repeat(" ", col)) + "\n")
	}
	for i, g := range optGroups {
		fmt.Fprintf(&b, "\nOptions (%s):\n", g.title)
		for _, o := range g.opts {
			item(o.left(), o.help)
		}
		if i == 0 {
			item("NAME=VALUE", []string{"set an environment variable"})
		}
	}
	b.WriteString("\n" + usageEpilogue + "\n")
	return b.String()
}

// usage is built when asked for: every start of uexec would pay for it.
var usage = sync.OnceValue(usageText)

// roffEscape makes s safe in a roff text line.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func manPage(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`.TH UEXEC 1 "" "uexec" "User Commands"`)
	p(".SH NAME")
	p(`uexec \- run and explain program execution with a user\-space execve engine`)
	p(".SH SYNOPSIS")
	for _, c := range cmdSpecs {
		p(".B uexec %s", c.name)
		if c.args != "" {
			p(".I %s", roffEscape(c.args))
		}
		p(".br")
	}
	p(".SH DESCRIPTION")
	p("uexec is the NetBSD exec subsystem rebuilt as a user\\-space execve engine for")
	p("Linux x86\\-64: it plans an exec as the kernel would and builds the image itself.")
	p("Options come before the program;")
	p(`.B \-\-`)
	p("ends them; the program's own arguments are never touched.")
	p(".PP")
	p("%s", roffEscape(strings.ReplaceAll(usageEpilogue, "\n", " ")))
	p(".SH COMMANDS")
	for _, c := range cmdSpecs {
		p(".TP")
		if c.args != "" {
			p(`.B %s \fI%s\fR`, c.name, roffEscape(c.args))
		} else {
			p(".B %s", c.name)
		}
		p("%s", roffEscape(c.help))
	}
	for i, g := range optGroups {
		p(".SH OPTIONS (%s)", strings.ToUpper(g.title))
		for _, o := range g.opts {
			p(".TP")
			name := `\fB` + roffEscape(o.long) + `\fR`
			if o.short != "" {
				name = `\fB` + roffEscape(o.short) + `\fR, ` + name
			}
			switch {
			case o.arg != "" && o.argOptional:
				name += `[=\fI` + roffEscape(o.arg) + `\fR]`
			case o.arg != "":
				name += ` \fI` + roffEscape(o.arg) + `\fR`
			}
			p("%s", name)
			p("%s", roffEscape(strings.Join(o.help, " ")))
		}
		if i == 0 {
			p(".TP")
			p(`\fINAME\fR=\fIVALUE\fR`)
			p("set an environment variable")
		}
	}
	p(".SH EXIT STATUS")
	p("As env(1): the program's status; 125 when uexec itself fails, 126 when the")
	p("program was found but cannot be run, 127 when it was not found.")
	p(".SH SEE ALSO")
	p(".BR env (1),")
	p(".BR execve (2),")
	p(".BR setarch (8),")
	p(".BR bear (1)")
}

// allOpts returns the options of command cmd ("plan" or "run").
func allOpts(cmd string) []optSpec {
	var out []optSpec
	for _, g := range optGroups {
		if g.title == "plan and run" || g.title == cmd {
			out = append(out, g.opts...)
		}
	}
	return out
}

func optWords(opts []optSpec) string {
	var w []string
	for _, o := range opts {
		if o.short != "" {
			w = append(w, o.short)
		}
		name := o.long
		if o.argOptional {
			w = append(w, name, name+"=")
			continue
		}
		w = append(w, name)
	}
	return strings.Join(w, " ")
}

func bashCompletion(w io.Writer) {
	var cmds []string
	for _, c := range cmdSpecs {
		cmds = append(cmds, c.name)
	}
	valued := map[string][]string{}
	for _, g := range optGroups {
		for _, o := range g.opts {
			if o.arg == "" || o.argOptional {
				continue
			}
			for _, n := range []string{o.short, o.long} {
				if n != "" {
					valued[o.complete] = append(valued[o.complete], n)
				}
			}
		}
	}
	fmt.Fprintf(w, `# bash completion for uexec (uexec completion bash)
_uexec() {
	local cur prev i w
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W %q -- "$cur"))
		return
	fi
	case ${COMP_WORDS[1]} in
	log)
		if [ "$COMP_CWORD" -eq 2 ]; then
			COMPREPLY=($(compgen -W %q -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		return ;;
	completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
	plan | run) ;;
	*) return ;;
	esac
	# Past the program name, complete its arguments as files.
	for ((i = 2; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--) COMPREPLY=($(compgen -c -- "$cur")); [ $((i + 1)) -lt "$COMP_CWORD" ] && COMPREPLY=($(compgen -f -- "$cur")); return ;;
		%s) i=$((i + 1)) ;;
		-*) ;;
		*=*) ;;
		*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		esac
	done
	case $prev in
`, strings.Join(cmds, " "), strings.Join(logCommands, " "), strings.Join(append(append(append(valued["dir"], valued["file"]...), valued["var"]...), valued[""]...), " | "))
	for _, k := range []struct{ kind, gen string }{{"dir", "-d"}, {"file", "-f"}, {"var", "-v"}} {
		if len(valued[k.kind]) > 0 {
			fmt.Fprintf(w, "\t%s) COMPREPLY=($(compgen %s -- \"$cur\")); return ;;\n", strings.Join(valued[k.kind], " | "), k.gen)
		}
	}
	if len(valued[""]) > 0 {
		fmt.Fprintf(w, "\t%s) return ;;\n", strings.Join(valued[""], " | "))
	}
	fmt.Fprintf(w, `	esac
	if [[ $cur == -* ]]; then
		case ${COMP_WORDS[1]} in
		plan) COMPREPLY=($(compgen -W %q -- "$cur")) ;;
		run) COMPREPLY=($(compgen -W %q -- "$cur")) ;;
		esac
	else
		COMPREPLY=($(compgen -c -- "$cur"))
	fi
}
complete -o default -F _uexec uexec
`, optWords(allOpts("plan"))+" --help", optWords(allOpts("run"))+" --help")
}

// zshQuote escapes a description for _arguments and _describe.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", `'\''`, "[", "(", "]", ")", ":", `\:`)
	return r.Replace(s)
}

func zshCompletion(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("#compdef uexec")
	p("# zsh completion for uexec (uexec completion zsh)")
	p("_uexec() {")
	p("\tlocal -a cmds")
	p("\tcmds=(")
	for _, c := range cmdSpecs {
		p("\t\t'%s:%s'", c.name, zshQuote(c.help))
	}
	p("\t)")
	p("\tif (( CURRENT == 2 )); then")
	p("\t\t_describe command cmds")
	p("\t\treturn")
	p("\tfi")
	p("\tlocal sub=$words[2]")
	p("\tshift words")
	p("\t(( CURRENT-- ))")
	p("\tcase $sub in")
	for _, cmd := range []string{"plan", "run"} {
		p("\t%s)", cmd)
		p("\t\t_arguments -S \\")
		for _, o := range allOpts(cmd) {
			action := ""
			switch o.complete {
			case "dir":
				action = ":directory:_files -/"
			case "file":
				action = ":file:_files"
			case "var":
				action = ":variable:_parameters"
			default:
				if o.arg != "" && !o.argOptional {
					action = ":" + strings.ToLower(o.arg) + ":"
				}
			}
			desc := "[" + zshQuote(strings.Join(o.help, " ")) + "]"
			long := o.long
			if o.argOptional {
				long += "=-"
				action = ":" + zshQuote(strings.ToLower(o.arg)) + ":"
			} else if o.arg != "" && o.short == "" {
				long += "="
			}
			if o.short != "" {
				p("\t\t\t'(%s %s)'{%s,%s}'%s%s' \\", o.short, o.long, o.short, o.long, desc, action)
			} else {
				p("\t\t\t'%s%s%s' \\", long, desc, action)
			}
		}
		p("\t\t\t'(-)'{-h,--help}'[show the help]' \\")
		p("\t\t\t'*::program:_normal' ;;")
	}
	p("\tlog) _arguments '1:command:(%s)' '2:log file:_files' ;;", strings.Join(logCommands, " "))
	p("\tcompletion) _arguments '1:shell:(bash zsh)' ;;")
	p("\tesac")
	p("}")
	p(`_uexec "$@"`)
}

func cmdCompletion(stdout, stderr io.Writer, args []string) int {
	if len(args) == 1 {
		switch args[0] {
		case "bash":
			bashCompletion(stdout)
			return 0
		case "zsh":
			zshCompletion(stdout)
			return 0
		}
	}
	fmt.Fprintf(stderr, "usage: uexec completion bash|zsh\n")
	return exitUsage
}
