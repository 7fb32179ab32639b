/* probe.h: what this machine's kernel and filesystem allow. */
#ifndef RJ_PROBE_H
#define RJ_PROBE_H

/* Try an O_DIRECT write of one aligned block to a temporary file in dir.
 * 1 usable, 0 refused by the filesystem (EINVAL), or -errno otherwise. */
int rj_probe_odirect(const char *dir);

/* Try io_uring_setup(2): 1 usable, 0 unavailable (ENOSYS, EPERM: kernel
 * built without it or disabled by sysctl/seccomp), or -errno otherwise. */
int rj_probe_io_uring(void);

#endif
