/* dispatch.c: the kernel registry and the one mutable global, the active
 * kernel pointer. It is an atomic so a thread that reads it while another
 * forces a kernel sees either the old or the new table, never a torn one;
 * relaxed/acquire pairs with the release store in rj_kernel_select (the
 * tables are const data, so only the pointer itself needs ordering).
 */
#include "dispatch.h"
#include "cpu.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

const rj_kernel *const rj_all_kernels[] = {
#ifdef RJ_HAVE_X86_KERNELS
    &rj_kernel_avx2,
    &rj_kernel_sse2,
#endif
    &rj_kernel_scalar,
    NULL,
};

static _Atomic(const rj_kernel *) rj_active;

const rj_kernel *rj_kernel_by_name(const char *name)
{
    for (size_t i = 0; rj_all_kernels[i]; i++)
        if (strcmp(rj_all_kernels[i]->name, name) == 0)
            return rj_all_kernels[i];
    return NULL;
}

int rj_kernel_supported(const rj_kernel *k)
{
#ifdef RJ_HAVE_X86_KERNELS
    uint32_t f = rj_cpu_features();
    uint32_t avx2_needs = RJ_CPU_AVX2 | RJ_CPU_BMI1 | RJ_CPU_BMI2 | RJ_CPU_PCLMUL;
    if (k == &rj_kernel_avx2)
        return (f & avx2_needs) == avx2_needs;
    if (k == &rj_kernel_sse2)
        return (f & RJ_CPU_SSE2) != 0;
#endif
    return k == &rj_kernel_scalar;
}

const rj_kernel *rj_kernel_best(void)
{
    for (size_t i = 0; rj_all_kernels[i]; i++)
        if (rj_kernel_supported(rj_all_kernels[i]))
            return rj_all_kernels[i];
    return &rj_kernel_scalar;
}

const rj_kernel *rj_kernel_active(void)
{
    /* Acquire pairs with the release stores below. */
    const rj_kernel *k = atomic_load_explicit(&rj_active, memory_order_acquire);
    if (!k) {
        const rj_kernel *expected = NULL;
        k = rj_kernel_best();
        /* First use: install the best kernel unless someone forced one. */
        if (!atomic_compare_exchange_strong_explicit(&rj_active, &expected, k,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire))
            k = expected;
    }
    return k;
}

int rj_kernel_select(const char *name)
{
    const rj_kernel *k = rj_kernel_by_name(name);
    if (!k)
        return -ENOENT;
    if (!rj_kernel_supported(k))
        return -ENOTSUP;
    /* Release pairs with the acquire load in rj_kernel_active. */
    atomic_store_explicit(&rj_active, k, memory_order_release);
    return 0;
}
