#!/bin/sh
# Builds the stub from stub.c: writes ../stub.elf and its listing ../stub.lst,
# or only the ELF to $1. Run it after changing stub.c (go generate
# ./internal/planstub); TestStubBuild checks the committed files are this
# script's output.
set -eu
cd "$(dirname "$0")"
out=${1:-../stub.elf}
gcc -std=gnu11 -Os -ffreestanding -fno-builtin -nostdlib -static -fPIE \
	-mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-unwind-tables -fno-jump-tables \
	-fno-delete-null-pointer-checks -fno-ident -Wall -Werror \
	-Wl,-Ttext-segment=0x10000001000 -Wl,--build-id=none -Wl,-z,noexecstack \
	-Wl,-z,norelro -Wl,-z,max-page-size=0x1000 -Wl,-z,noseparate-code \
	-Wl,--no-dynamic-linker -no-pie \
	-o "$out" stub.c
if [ $# -eq 0 ]; then
	objdump -d --no-show-raw-insn ../stub.elf | sed -n '/Disassembly/,$p' > ../stub.lst
fi
