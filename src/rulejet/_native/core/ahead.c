/* ahead.c: the readahead helper (see ahead.h). */
#include "ahead.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mapped.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older headers lack the name */
#endif

static void *ahead_main(void *arg)
{
    rj_ahead *a = arg;
    size_t page = rj_page_size();
    /* madvise takes page-aligned starts: from the page holding buf. */
    uintptr_t first = (uintptr_t)a->buf & ~(uintptr_t)(page - 1);
    uintptr_t end = (uintptr_t)a->buf + a->len;
    for (uintptr_t at = first; at < end;) {
        if (atomic_load_explicit(&a->stop, memory_order_relaxed))
            break;
        size_t reader = atomic_load_explicit(&a->reader, memory_order_relaxed);
        size_t off = at > (uintptr_t)a->buf ? (size_t)(at - (uintptr_t)a->buf) : 0;
        if (off > reader + a->window) {
            /* Far enough ahead: wait for the reader (about 2 MB of
             * reading at scan speed; shorter naps wake the helper often
             * enough to slow a reader on the same core's other thread). */
            struct timespec nap = {0, 1000 * 1000};
            nanosleep(&nap, NULL);
            continue;
        }
        size_t n = end - at < a->chunk ? (size_t)(end - at) : a->chunk;
        if (madvise((void *)at, n, MADV_POPULATE_READ) < 0 && errno != EINTR)
            break; /* no such advice here, or a page that cannot be read */
        at += n;
        atomic_store_explicit(&a->done, (size_t)(at - (uintptr_t)a->buf), memory_order_relaxed);
    }
    return NULL;
}

void rj_ahead_start_with(rj_ahead *a, const uint8_t *buf, size_t len, size_t window,
                         size_t chunk)
{
    memset(a, 0, sizeof *a);
    a->buf = buf;
    a->len = len;
    a->window = window;
    a->chunk = chunk ? chunk : RJ_AHEAD_CHUNK;
    const char *env = getenv("RULEJET_READAHEAD");
    if (!len || (env && strcmp(env, "0") == 0))
        return;
    /* Signals stay with the threads that handle them (the interpreter's). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    a->running = pthread_create(&a->thread, NULL, ahead_main, a) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void rj_ahead_start(rj_ahead *a, const uint8_t *buf, size_t len)
{
    if (len < RJ_AHEAD_MIN) {
        memset(a, 0, sizeof *a);
        return;
    }
    rj_ahead_start_with(a, buf, len, RJ_AHEAD_WINDOW, RJ_AHEAD_CHUNK);
}

int rj_ahead_spare_cpu(void)
{
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0)
        return CPU_COUNT(&cpus) > 1;
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

void rj_ahead_stop(rj_ahead *a)
{
    if (!a->running)
        return;
    atomic_store_explicit(&a->stop, 1, memory_order_relaxed);
    pthread_join(a->thread, NULL);
    a->running = 0;
}
