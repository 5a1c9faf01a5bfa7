#!/usr/bin/env bash
# Measures what a Go binary's start costs by what it links, before main
# does anything: an empty main, one linking os/exec (bench/gorun's
# dependencies), one linking what cmd/uexec links, one linking os/exec
# and backend/linux; then `uexec help`, bench/gorun running /bin/true and
# `uexec run --once /bin/true`: COPIES copies of each, run in turns
# (bench/interleave), their medians printed. The third against the second
# is what uexec's size and package initialisation add to every start of
# uexec before its own work (README, Benchmarks).
#
#   bench/start.sh            # RUNS=500 COPIES=2
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-500}
copies=${COPIES:-2}

# The mains are built inside the module, in a directory that ./...
# skips (its name starts with _), removed on exit.
src=$(mktemp -d "$PWD/bench/_start.XXXXXX")
work=$(mktemp -d)
trap 'rm -rf "$src" "$work"' EXIT
nop() { # NAME IMPORT...: an empty main importing each IMPORT for its side effects
	local name=$1
	shift
	mkdir "$src/$name"
	{
		printf 'package main\n\nimport (\n'
		for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
		printf ')\n\nfunc main() {}\n'
	} >"$src/$name/main.go"
	go build -o "$work/$name.built" "./bench/$(basename "$src")/$name"
}
m=github.com/uexec/uexec
nop empty
nop osexec os/exec
nop uexecpkgs os/exec encoding/json os/signal $m $m/execsw $m/format/binfmt $m/format/elf \
	$m/internal/sigexit $m/segvguard $m/veriexec
nop backend os/exec $m/backend/linux
go build -o "$work/uexec.built" ./cmd/uexec
go build -o "$work/gorun.built" ./bench/gorun
go build -o "$work/interleave" ./bench/interleave
cmds=()
for i in $(seq "$copies"); do
	for b in empty osexec uexecpkgs backend uexec gorun; do cp "$work/$b.built" "$work/$b$i"; done
	cmds+=("$work/empty$i" -- "$work/osexec$i" -- "$work/uexecpkgs$i" -- "$work/backend$i" --
		"$work/uexec$i" help -- "$work/gorun$i" /bin/true -- "$work/uexec$i" run --once /bin/true --)
done
unset 'cmds[${#cmds[@]}-1]'
"$work/interleave" -n "$runs" "${cmds[@]}" | sed "s#$work/##"
