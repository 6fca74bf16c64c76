/* Linux AIO for the ARM binaries that tests/integration/test_arm.py runs under
 * qemu-user: qemu does not emulate io_setup/io_submit/io_getevents/io_destroy,
 * and libraft's disk I/O (uv backend) needs them. Preloaded (LD_PRELOAD) into
 * the ARM process only, it intercepts libc's syscall() for those numbers and
 * runs each request at once with pread/pwrite, queueing its completion event and
 * signalling the request's eventfd as the kernel would. Test support, not
 * shipped: on a real board the kernel does this. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

struct aio_ctx {
    pthread_mutex_t lock;
    struct io_event *done;
    size_t n, cap;
};

/* The host's (amd64) programs that shoal spawns must not see an ARM library. */
__attribute__((constructor)) static void forget_preload(void)
{
    unsetenv("LD_PRELOAD");
}

static long fail(int e)
{
    errno = e;
    return -1;
}

static long aio_setup(unsigned nr, aio_context_t *out)
{
    struct aio_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return fail(ENOMEM);
    pthread_mutex_init(&c->lock, NULL);
    *out = (aio_context_t)(uintptr_t)c;
    (void)nr;
    return 0;
}

static long aio_destroy(aio_context_t ctx)
{
    struct aio_ctx *c = (struct aio_ctx *)(uintptr_t)ctx;
    if (c == NULL)
        return fail(EINVAL);
    free(c->done);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return 0;
}

static int64_t run_request(const struct iocb *cb)
{
    int fd = (int)cb->aio_fildes;
    void *buf = (void *)(uintptr_t)cb->aio_buf;
    ssize_t n;
    switch (cb->aio_lio_opcode) {
    case IOCB_CMD_PREAD: n = pread(fd, buf, cb->aio_nbytes, cb->aio_offset); break;
    case IOCB_CMD_PWRITE: n = pwrite(fd, buf, cb->aio_nbytes, cb->aio_offset); break;
    case IOCB_CMD_PREADV: n = preadv(fd, buf, (int)cb->aio_nbytes, cb->aio_offset); break;
    case IOCB_CMD_PWRITEV: n = pwritev(fd, buf, (int)cb->aio_nbytes, cb->aio_offset); break;
    case IOCB_CMD_FSYNC: n = fsync(fd); break;
    case IOCB_CMD_FDSYNC: n = fdatasync(fd); break;
    default: errno = EINVAL; n = -1;
    }
    if (n >= 0 && (cb->aio_rw_flags & (RWF_DSYNC | RWF_SYNC)) && fdatasync(fd) < 0)
        n = -1;
    return n < 0 ? -errno : n;
}

static long aio_submit(aio_context_t ctx, long nr, struct iocb **cbs)
{
    struct aio_ctx *c = (struct aio_ctx *)(uintptr_t)ctx;
    if (c == NULL || nr < 0)
        return fail(EINVAL);
    for (long i = 0; i < nr; i++) {
        struct io_event ev = {.data = cbs[i]->aio_data, .obj = (uintptr_t)cbs[i],
                              .res = run_request(cbs[i])};
        pthread_mutex_lock(&c->lock);
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 16;
            struct io_event *grown = realloc(c->done, cap * sizeof(*grown));
            if (grown == NULL) {
                pthread_mutex_unlock(&c->lock);
                return i ? i : fail(EAGAIN);
            }
            c->done = grown;
            c->cap = cap;
        }
        c->done[c->n++] = ev;
        pthread_mutex_unlock(&c->lock);
        if (cbs[i]->aio_flags & IOCB_FLAG_RESFD) {
            uint64_t one = 1;
            if (write((int)cbs[i]->aio_resfd, &one, sizeof(one)) < 0)
                return fail(errno);
        }
    }
    return nr;
}

static long aio_getevents(aio_context_t ctx, long max, struct io_event *out)
{
    struct aio_ctx *c = (struct aio_ctx *)(uintptr_t)ctx;
    if (c == NULL || max < 0)
        return fail(EINVAL);
    pthread_mutex_lock(&c->lock);
    size_t n = c->n < (size_t)max ? c->n : (size_t)max;
    for (size_t i = 0; i < n; i++)
        out[i] = c->done[i];
    for (size_t i = n; i < c->n; i++)
        c->done[i - n] = c->done[i];
    c->n -= n;
    pthread_mutex_unlock(&c->lock);
    return (long)n;
}

long syscall(long number, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    switch (number) {
    case __NR_io_setup: return aio_setup((unsigned)a[0], (aio_context_t *)a[1]);
    case __NR_io_destroy: return aio_destroy((aio_context_t)a[0]);
    case __NR_io_submit: return aio_submit((aio_context_t)a[0], a[1], (struct iocb **)a[2]);
#ifdef __NR_io_getevents
    case __NR_io_getevents:
#endif
#ifdef __NR_io_pgetevents
    case __NR_io_pgetevents:
#endif
        return aio_getevents((aio_context_t)a[0], a[2], (struct io_event *)a[3]);
    default: break;
    }
    static long (*next)(long, ...);
    if (next == NULL)
        next = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
