/* Stubs for the functions of the libraries in base/lazy_stubs.def, which the
 * binary does not link: every CLI command would otherwise map and relocate
 * libcrypto, libssl, libldns, libsqlite3 and libraft at start (~1.2 ms of
 * CPU on the reference machine) without calling them.
 *
 * Each stub jumps through its own slot. A slot first holds lazy_stub_common,
 * which keeps the caller's argument registers, asks lazy_stub_resolve
 * (base/lazy_stubs.c) for the library's function (loading the library at its
 * first call), which it also writes into the slot, and jumps to it with the
 * arguments as they came: the stubs need no prototypes, varargs included.
 * The stubs are hidden: the libraries, once loaded, never bind to them. */

#define STUB_LIB(id, soname)
#define STUB_FN(id, name) lazy_stub name

#if defined(__x86_64__)

/* r11 (scratch, no argument) carries the slot's address to lazy_stub_common */
.macro lazy_stub name
    .text
    .globl \name
    .hidden \name
    .type \name, @function
\name:
    lea lazy_slot_\name(%rip), %r11
    jmp *(%r11)
    .size \name, . - \name
    .data
    .balign 8
lazy_slot_\name:
    .quad lazy_stub_common
.endm

    .text
    .type lazy_stub_common, @function
lazy_stub_common:
    push %rbp
    mov %rsp, %rbp
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %r8
    push %r9
    push %rax /* al: vector registers used by a varargs call */
    push %r11
    sub $128, %rsp
    movdqu %xmm0, 0(%rsp)
    movdqu %xmm1, 16(%rsp)
    movdqu %xmm2, 32(%rsp)
    movdqu %xmm3, 48(%rsp)
    movdqu %xmm4, 64(%rsp)
    movdqu %xmm5, 80(%rsp)
    movdqu %xmm6, 96(%rsp)
    movdqu %xmm7, 112(%rsp)
    mov %r11, %rdi
    call lazy_stub_resolve
    mov %rax, %r10
    movdqu 0(%rsp), %xmm0
    movdqu 16(%rsp), %xmm1
    movdqu 32(%rsp), %xmm2
    movdqu 48(%rsp), %xmm3
    movdqu 64(%rsp), %xmm4
    movdqu 80(%rsp), %xmm5
    movdqu 96(%rsp), %xmm6
    movdqu 112(%rsp), %xmm7
    add $128, %rsp
    pop %r11
    pop %rax
    pop %r9
    pop %r8
    pop %rcx
    pop %rdx
    pop %rsi
    pop %rdi
    pop %rbp
    jmp *%r10
    .size lazy_stub_common, . - lazy_stub_common

#elif defined(__aarch64__)

/* x16 (IP0, free at a call) carries the slot's address to lazy_stub_common */
.macro lazy_stub name
    .text
    .globl \name
    .hidden \name
    .type \name, %function
    .balign 4
\name:
    adrp x16, lazy_slot_\name
    add x16, x16, :lo12:lazy_slot_\name
    ldr x17, [x16]
    br x17
    .size \name, . - \name
    .data
    .balign 8
lazy_slot_\name:
    .xword lazy_stub_common
.endm

    .text
    .type lazy_stub_common, %function
    .balign 4
lazy_stub_common:
    stp x29, x30, [sp, #-224]!
    mov x29, sp
    stp x0, x1, [sp, #16]
    stp x2, x3, [sp, #32]
    stp x4, x5, [sp, #48]
    stp x6, x7, [sp, #64]
    str x8, [sp, #80] /* indirect result */
    stp q0, q1, [sp, #96]
    stp q2, q3, [sp, #128]
    stp q4, q5, [sp, #160]
    stp q6, q7, [sp, #192]
    mov x0, x16
    bl lazy_stub_resolve
    mov x16, x0
    ldp q6, q7, [sp, #192]
    ldp q4, q5, [sp, #160]
    ldp q2, q3, [sp, #128]
    ldp q0, q1, [sp, #96]
    ldr x8, [sp, #80]
    ldp x6, x7, [sp, #64]
    ldp x4, x5, [sp, #48]
    ldp x2, x3, [sp, #32]
    ldp x0, x1, [sp, #16]
    ldp x29, x30, [sp], #224
    br x16
    .size lazy_stub_common, . - lazy_stub_common

#elif defined(__arm__)

    .syntax unified
    .arm

/* ip (r12, free at a call) carries the slot's address to lazy_stub_common */
.macro lazy_stub name
    .text
    .globl \name
    .hidden \name
    .type \name, %function
    .balign 4
\name:
    ldr ip, 2f
1:  add ip, pc, ip
    ldr pc, [ip]
2:  .word lazy_slot_\name - (1b + 8)
    .size \name, . - \name
    .data
    .balign 4
lazy_slot_\name:
    .word lazy_stub_common
.endm

    .text
    .type lazy_stub_common, %function
    .balign 4
lazy_stub_common:
    push {r0-r3, ip, lr} /* 24 bytes, then 64: the stack stays 8-aligned */
    vpush {d0-d7}
    mov r0, ip
    bl lazy_stub_resolve
    str r0, [sp, #80] /* in ip's place */
    vpop {d0-d7}
    pop {r0-r3, ip, lr}
    bx ip
    .size lazy_stub_common, . - lazy_stub_common

#else
#error "base/lazy_stubs.S: no stubs for this architecture"
#endif

/* The slots, in the order of lazy_stubs.def (lazy_stub_resolve's index) */
    .data
    .balign 8
    .globl lazy_stub_slots
    .hidden lazy_stub_slots
lazy_stub_slots:
#include "base/lazy_stubs.def"

    .section .note.GNU-stack, "", %progbits
