/* dispatch.h: choosing the kernel set at run time. */
#ifndef RJ_DISPATCH_H
#define RJ_DISPATCH_H

#include "../kernels/kernels.h"

/* All kernels compiled in, best first; NULL-terminated. */
extern const rj_kernel *const rj_all_kernels[];

/* Kernel by name, or NULL if unknown. */
const rj_kernel *rj_kernel_by_name(const char *name);

/* 1 if this CPU (and OS) can run k. */
int rj_kernel_supported(const rj_kernel *k);

/* Best supported kernel. */
const rj_kernel *rj_kernel_best(void);

/* Active kernel (chosen on first use if never set). */
const rj_kernel *rj_kernel_active(void);

/* Force a kernel by name: 0, -ENOENT if unknown, -ENOTSUP if the CPU
 * lacks it. On error the active kernel is unchanged. */
int rj_kernel_select(const char *name);

#endif
