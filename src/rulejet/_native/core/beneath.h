/* beneath.h: open a file by a path that must not leave a directory. */
#ifndef RJ_BENEATH_H
#define RJ_BENEATH_H

/* Open `path` (relative) under the directory `dirfd` for reading, with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the kernel resolves
 * every component, symlinks included, and fails with EXDEV if any step
 * would leave dirfd, so no check-then-open race exists. O_NONBLOCK keeps
 * a FIFO from blocking. Returns the fd, or -errno (-ENOSYS where the
 * kernel predates openat2: callers fall back to checking realpath). */
int rj_open_beneath(int dirfd, const char *path);

#endif
