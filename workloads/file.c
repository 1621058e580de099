/*
 * file.c: the `file` workload (io): read a file and checksum it (size and
 * CRC-32).  wl_prepare creates a private temporary directory
 * ($TMPDIR or /tmp, poolbench-file-XXXXXX) holding `files` files of `bytes`
 * seeded bytes each and remembers their CRCs; task i reads file
 * i % files, by the path its input carries; wl_cleanup removes them all.
 * Reads go through the page cache, as ordinary programs' do: a file read
 * again is hot.
 */
#include "wl_internal.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#define STREAM_FILE 0x46494c4500000000ULL
#define CHUNK 65536

static const wl_param_spec file_params[] = {
    {.name = "bytes", .type = WL_PARAM_INT, .def_int = 256 * 1024,
     .min_int = 0, .max_int = 1 << 30, .help = "size of each file"},
    {.name = "files", .type = WL_PARAM_INT, .def_int = 16, .min_int = 1,
     .max_int = 100000, .help = "number of files (task i reads i % files)"},
};

struct file_priv {
    char *dir;
    size_t nfiles;  /* files asked for */
    size_t created; /* files created so far (teardown removes these) */
    char **paths;
    uint32_t *crc;
};

const char *wl_file_dir(const wl_ctx *ctx)
{
    const struct file_priv *priv = ctx ? ctx->priv : NULL;
    return priv ? priv->dir : NULL;
}

/* Writes file f of the instance; 0 or -1 with errno. */
static int make_file(const wl_ctx *ctx, const char *path, size_t f,
                     uint32_t *crc_out)
{
    size_t bytes = (size_t)wl_params_int(ctx->params, "bytes");
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(buf);
        return -1;
    }
    wl_rng r = wl_rng_init(ctx->seed, STREAM_FILE, f);
    uLong crc = crc32(0L, Z_NULL, 0);
    int rc = 0;
    for (size_t done = 0; done < bytes && rc == 0;) {
        size_t n = bytes - done < CHUNK ? bytes - done : CHUNK;
        wl_rng_fill(&r, buf, n);
        crc = crc32(crc, buf, (uInt)n);
        rc = ex__write_full(fd, buf, n) == 0 ? 0 : -1;
        done += n;
    }
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    free(buf);
    errno = saved;
    *crc_out = (uint32_t)crc;
    return rc;
}

static void file_teardown(wl_ctx *ctx)
{
    struct file_priv *priv = ctx->priv;
    if (!priv)
        return;
    for (size_t f = 0; f < priv->created; f++)
        unlink(priv->paths[f]);
    if (priv->dir)
        rmdir(priv->dir);
    if (priv->paths)
        for (size_t f = 0; f < priv->nfiles; f++)
            free(priv->paths[f]);
    free(priv->paths);
    free(priv->crc);
    free(priv->dir);
    free(priv);
    ctx->priv = NULL;
}

static int file_setup(wl_ctx *ctx, char *err, size_t errlen)
{
    struct file_priv *priv = calloc(1, sizeof *priv);
    if (!priv)
        return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
    ctx->priv = priv;
    priv->nfiles = (size_t)wl_params_int(ctx->params, "files");
    uint64_t bytes = (uint64_t)wl_params_int(ctx->params, "bytes");
    priv->paths = calloc(priv->nfiles, sizeof *priv->paths);
    priv->crc = calloc(priv->nfiles, sizeof *priv->crc);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0])
        tmp = "/tmp";
    if (!priv->paths || !priv->crc ||
        asprintf(&priv->dir, "%s/poolbench-file-XXXXXX", tmp) < 0) {
        priv->dir = NULL;
        return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
    }
    if (!mkdtemp(priv->dir)) {
        int e = errno;
        wl_errf(err, errlen, "file: cannot create a directory in %s: %s",
                tmp, strerror(e));
        free(priv->dir);
        priv->dir = NULL;
        return EX_ESYS;
    }
    /* Refuse early rather than fill the disk halfway. */
    struct statvfs vfs;
    if (statvfs(priv->dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (bytes && priv->nfiles > avail / bytes)
            return wl_errf(err, errlen,
                           "file: %zu files of %" PRIu64 " bytes do not fit "
                           "in %s (%" PRIu64 " bytes free)",
                           priv->nfiles, bytes, tmp, avail);
    }
    for (size_t f = 0; f < priv->nfiles; f++) {
        if (asprintf(&priv->paths[f], "%s/f%06zu.dat", priv->dir, f) < 0) {
            priv->paths[f] = NULL;
            return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
        }
        if (make_file(ctx, priv->paths[f], f, &priv->crc[f])) {
            int e = errno;
            /* O_EXCL: a failed create left nothing of ours behind unless
             * open succeeded, in which case the file is ours to remove. */
            if (access(priv->paths[f], F_OK) == 0)
                priv->created = f + 1;
            return wl_errf(err, errlen, "file: cannot write %s: %s",
                           priv->paths[f], strerror(e)),
                   EX_ESYS;
        }
        priv->created = f + 1;
    }
    return 0;
}

static int file_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    const struct file_priv *priv = ctx->priv;
    const char *path = priv->paths[i % priv->nfiles];
    return ex_buf_append(in, path, strlen(path) + 1);
}

int wl_file_task(const void *in, size_t len, ex_buf *out)
{
    if (len < 2 || memchr(in, '\0', len) != (const char *)in + len - 1)
        return WL_CODE_EINPUT;
    int fd = open(in, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return WL_CODE_ERRNO_BASE + errno;
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return WL_CODE_ENOMEM;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t size = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = WL_CODE_ERRNO_BASE + errno;
            break;
        }
        if (n == 0)
            break;
        crc = crc32(crc, buf, (uInt)n);
        size += (uint64_t)n;
    }
    free(buf);
    close(fd); /* read-only: close cannot lose data */
    if (rc)
        return rc;
    unsigned char *p = ex_buf_extend(out, 12);
    if (!p)
        return WL_CODE_ENOMEM;
    wl_put_le64(p, size);
    wl_put_le32(p + 8, (uint32_t)crc);
    return 0;
}

static int file_check(const wl_ctx *ctx, size_t i, const void *out,
                      size_t len, char *err, size_t errlen)
{
    const struct file_priv *priv = ctx->priv;
    uint64_t bytes = (uint64_t)wl_params_int(ctx->params, "bytes");
    if (len != 12)
        return wl_errf(err, errlen,
                       "file: task %zu: output is %zu bytes, expected 12", i,
                       len);
    uint64_t size = wl_get_le64(out);
    uint32_t crc = wl_get_le32((const unsigned char *)out + 8);
    uint32_t want = priv->crc[i % priv->nfiles];
    if (size != bytes || crc != want)
        return wl_errf(err, errlen,
                       "file: task %zu: read %" PRIu64 " bytes with CRC %08x, "
                       "expected %" PRIu64 " bytes with CRC %08x",
                       i, size, crc, bytes, want);
    return 0;
}

static const struct wl_ops file_ops = {
    .setup = file_setup,
    .teardown = file_teardown,
    .build = file_build,
    .stages = {wl_file_task, NULL},
    .check = file_check,
};

const wl_workload wl_file_workload = {
    .name = "file",
    .kind = WL_IO,
    .help = "read and CRC-32 files generated in a temporary directory",
    .params = file_params,
    .nparams = sizeof file_params / sizeof file_params[0],
    .ops = &file_ops,
};
