# hinolibc: writes "hi\n" and exits 0, with no libc and no stack use: it
# runs under limits (RLIMIT_STACK, RLIMIT_DATA) that leave a libc no room.
	.globl _start
_start:
	mov $1, %eax
	mov $1, %edi
	lea msg(%rip), %rsi
	mov $3, %edx
	syscall
	mov $60, %eax
	xor %edi, %edi
	syscall
msg:	.ascii "hi\n"
