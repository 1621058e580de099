/*
 * mandelbrot.c: the `mandelbrot` workload (cpu).  The view [-2, 1] x
 * [-1.5, 1.5] is cut into a fixed grid of 32 x 32 square tiles of `tile`
 * pixels; each task computes one tile's escape counts.  Tiles inside the
 * set cost max_iter per pixel and tiles outside almost nothing: the
 * imbalance is part of the workload.
 *
 * Task i computes tile i mod 1024 of a progressive order (tile_of): the
 * index's 10 bits reversed, then split into x (even bits) and y (odd
 * bits), so that any first 4^k tasks cover an even 2^k x 2^k lattice of
 * the view.  Input i therefore depends on i alone, not on how many tasks
 * the run has: runs of different lengths (a sweep sizes each by the rule)
 * compute the same first outputs, which is what the digest over the first
 * digest_tasks outputs compares, and have the same mix of cheap and
 * costly tiles.
 */
#include "wl_internal.h"


static const wl_param_spec mandelbrot_params[] = {
    {.name = "tile", .type = WL_PARAM_INT, .def_int = 64, .min_int = 1,
     .max_int = 4096, .help = "tile side in pixels"},
    {.name = "max_iter", .type = WL_PARAM_INT, .def_int = 1000, .min_int = 1,
     .max_int = 65535, .help = "iterations before a point counts as inside"},
};

#define HEADER 44 /* le32 w, h, max_iter; f64 cx0, cy0, dx, dy */

int wl_mandelbrot_encode(ex_buf *in, uint32_t w, uint32_t h,
                         uint32_t max_iter, double cx0, double cy0,
                         double dx, double dy)
{
    unsigned char *p = ex_buf_extend(in, HEADER);
    if (!p)
        return EX_ENOMEM;
    wl_put_le32(p, w);
    wl_put_le32(p + 4, h);
    wl_put_le32(p + 8, max_iter);
    wl_put_f64(p + 12, cx0);
    wl_put_f64(p + 20, cy0);
    wl_put_f64(p + 28, dx);
    wl_put_f64(p + 36, dy);
    return 0;
}

int wl_mandelbrot_task(const void *in, size_t len, ex_buf *out)
{
    if (len != HEADER)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    uint32_t w = wl_get_le32(p), h = wl_get_le32(p + 4);
    uint32_t max_iter = wl_get_le32(p + 8);
    double cx0 = wl_get_f64(p + 12), cy0 = wl_get_f64(p + 20);
    double dx = wl_get_f64(p + 28), dy = wl_get_f64(p + 36);
    if (w == 0 || h == 0 || w > 65536 || h > 65536 || max_iter > 65535 ||
        (uint64_t)w * h > (1ULL << 28))
        return WL_CODE_EINPUT;
    unsigned char *px = ex_buf_extend(out, (size_t)w * h * 2);
    if (!px)
        return WL_CODE_ENOMEM;
    for (uint32_t y = 0; y < h; y++) {
        double ci = cy0 + y * dy;
        for (uint32_t x = 0; x < w; x++) {
            double cr = cx0 + x * dx;
            double zr = 0, zi = 0, zr2 = 0, zi2 = 0;
            uint32_t n = 0;
            while (n < max_iter && zr2 + zi2 <= 4.0) {
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                zr2 = zr * zr;
                zi2 = zi * zi;
                n++;
            }
            px[0] = (unsigned char)n;
            px[1] = (unsigned char)(n >> 8);
            px += 2;
        }
    }
    return 0;
}

#define GRID_BITS 5 /* 32 x 32 tiles */

/* Task i's tile (column *tx, row *ty) in the progressive order. */
static void tile_of(size_t i, size_t *tx, size_t *ty)
{
    size_t k = i % ((size_t)1 << (2 * GRID_BITS)), r = 0;
    for (int b = 0; b < 2 * GRID_BITS; b++)
        r |= ((k >> b) & 1) << (2 * GRID_BITS - 1 - b);
    *tx = *ty = 0;
    for (int b = 0; b < GRID_BITS; b++) {
        *tx |= ((r >> (2 * b)) & 1) << b;
        *ty |= ((r >> (2 * b + 1)) & 1) << b;
    }
}

static int mandelbrot_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    uint32_t tile = (uint32_t)wl_params_int(ctx->params, "tile");
    uint32_t max_iter = (uint32_t)wl_params_int(ctx->params, "max_iter");
    double scale = 3.0 / ((double)((size_t)1 << GRID_BITS) * tile);
    size_t tx, ty;
    tile_of(i, &tx, &ty);
    double cx0 = -2.0 + ((double)tx * tile + 0.5) * scale;
    double cy0 = -1.5 + ((double)ty * tile + 0.5) * scale;
    return wl_mandelbrot_encode(in, tile, tile, max_iter, cx0, cy0, scale,
                                scale);
}

static int mandelbrot_check(const wl_ctx *ctx, size_t i, const void *out,
                            size_t len, char *err, size_t errlen)
{
    size_t tile = (size_t)wl_params_int(ctx->params, "tile");
    uint32_t max_iter = (uint32_t)wl_params_int(ctx->params, "max_iter");
    if (len != tile * tile * 2)
        return wl_errf(err, errlen,
                       "mandelbrot: task %zu: output is %zu bytes, expected "
                       "%zu", i, len, tile * tile * 2);
    const unsigned char *p = out;
    for (size_t k = 0; k < tile * tile; k++) {
        uint32_t n = (uint32_t)p[2 * k] | (uint32_t)p[2 * k + 1] << 8;
        if (n > max_iter)
            return wl_errf(err, errlen,
                           "mandelbrot: task %zu: pixel %zu has %u "
                           "iterations, more than max_iter %u",
                           i, k, n, max_iter);
    }
    return 0;
}

static const struct wl_ops mandelbrot_ops = {
    .build = mandelbrot_build,
    .stages = {wl_mandelbrot_task, NULL},
    .check = mandelbrot_check,
};

const wl_workload wl_mandelbrot_workload = {
    .name = "mandelbrot",
    .kind = WL_CPU,
    .help = "Mandelbrot escape counts, one square image tile per task",
    .params = mandelbrot_params,
    .nparams = sizeof mandelbrot_params / sizeof mandelbrot_params[0],
    .ops = &mandelbrot_ops,
};
