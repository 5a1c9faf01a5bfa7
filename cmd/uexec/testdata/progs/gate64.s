# gate64: an ELF32 (i386) program that far-jumps to the 64-bit code
# segment and there calls the x86-64 execve("/bin/echo", {"/bin/echo",
# "gate", NULL}, NULL) with `syscall`; exit 99 if that returns.
.code32
.globl _start
_start:
	ljmp $0x33, $1f
.code64
1:
	lea path(%rip), %rdi
	lea argv(%rip), %rsi
	xor %edx, %edx
	mov $59, %eax
	syscall
	mov $60, %eax
	mov $99, %edi
	syscall
path:	.asciz "/bin/echo"
arg1:	.asciz "gate"
	.balign 8
argv:	.long path, 0, arg1, 0, 0, 0
