/* spin.h: the CPU's spin-wait hint, for CAS retry and busy-wait loops
 * (it saves power and lets a hyperthread sibling run). */
#ifndef RJ_SPIN_H
#define RJ_SPIN_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RJ_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define RJ_PAUSE() __asm__ volatile("yield")
#else
#define RJ_PAUSE() ((void)0)
#endif

#endif
