/*
 * blur.c: the `blur` workload (cpu): batch image processing.  Each input is
 * a grayscale tile (the pixels travel as the payload, so a large tile costs
 * its transfer in the process pool) and the task applies a separable
 * Gaussian blur: a horizontal pass into a float buffer, then a vertical
 * pass, edges clamped.  The kernel is normalised, so a constant image stays
 * constant, and each output pixel is a convex combination of input pixels.
 */
#include "wl_internal.h"

#include <math.h>
#include <stdlib.h>

#define STREAM_BLUR 0x424c555200000000ULL
#define HEADER 16 /* le32 w, h; f64 sigma */
#define MAX_SIGMA 64.0

static const wl_param_spec blur_params[] = {
    {.name = "tile", .type = WL_PARAM_INT, .def_int = 256, .min_int = 1,
     .max_int = 8192, .help = "tile side in pixels (tile^2 bytes in and out)"},
    {.name = "sigma", .type = WL_PARAM_DOUBLE, .def_double = 2.0,
     .min_double = 0.1, .max_double = MAX_SIGMA,
     .help = "Gaussian standard deviation in pixels (radius = ceil(3 sigma))"},
};

int wl_blur_encode(ex_buf *in, uint32_t w, uint32_t h, double sigma,
                   const unsigned char *pixels)
{
    size_t n = (size_t)w * h;
    unsigned char *p = ex_buf_extend(in, HEADER + n);
    if (!p)
        return EX_ENOMEM;
    wl_put_le32(p, w);
    wl_put_le32(p + 4, h);
    wl_put_f64(p + 8, sigma);
    if (pixels && n)
        memcpy(p + HEADER, pixels, n);
    return 0;
}

static inline size_t clampi(long v, size_t n)
{
    return v < 0 ? 0 : (size_t)v >= n ? n - 1 : (size_t)v;
}

int wl_blur_task(const void *in, size_t len, ex_buf *out)
{
    if (len < HEADER)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    size_t w = wl_get_le32(p), h = wl_get_le32(p + 4);
    double sigma = wl_get_f64(p + 8);
    if (w == 0 || h == 0 || len - HEADER != w * h || !(sigma > 0.0) ||
        sigma > MAX_SIGMA)
        return WL_CODE_EINPUT;
    const unsigned char *src = p + HEADER;

    long radius = (long)ceil(3.0 * sigma);
    float *kernel = malloc((size_t)(radius + 1) * sizeof *kernel);
    float *tmp = malloc(w * h * sizeof *tmp);
    unsigned char *dst = ex_buf_extend(out, w * h);
    if (!kernel || !tmp || !dst) {
        free(kernel);
        free(tmp);
        return WL_CODE_ENOMEM;
    }
    double sum = 0;
    for (long d = 0; d <= radius; d++) {
        double k = exp(-(double)(d * d) / (2.0 * sigma * sigma));
        kernel[d] = (float)k;
        sum += d ? 2 * k : k;
    }
    for (long d = 0; d <= radius; d++)
        kernel[d] = (float)(kernel[d] / sum);

    /* Horizontal pass: tmp = rows of src convolved. */
    for (size_t y = 0; y < h; y++) {
        const unsigned char *row = src + y * w;
        float *trow = tmp + y * w;
        for (size_t x = 0; x < w; x++) {
            float acc = 0.0f;
            for (long d = -radius; d <= radius; d++)
                acc += kernel[labs(d)] * row[clampi((long)x + d, w)];
            trow[x] = acc;
        }
    }
    /* Vertical pass: dst = columns of tmp convolved, rounded. */
    for (size_t y = 0; y < h; y++) {
        unsigned char *drow = dst + y * w;
        for (size_t x = 0; x < w; x++) {
            float acc = 0.0f;
            for (long d = -radius; d <= radius; d++)
                acc += kernel[labs(d)] * tmp[clampi((long)y + d, h) * w + x];
            long v = lrintf(acc);
            drow[x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(kernel);
    free(tmp);
    return 0;
}

/* A tile that looks like a photo more than like noise: soft waves and a
 * disc, plus seeded grain, so blurring changes it in a visible way. */
static int blur_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    uint32_t tile = (uint32_t)wl_params_int(ctx->params, "tile");
    double sigma = wl_params_double(ctx->params, "sigma");
    int rc = wl_blur_encode(in, tile, tile, sigma, NULL);
    if (rc)
        return rc;
    unsigned char *px = in->data + in->len - (size_t)tile * tile;
    wl_rng r = wl_rng_init(ctx->seed, STREAM_BLUR, i);
    double fx = 0.02 + 0.1 * wl_rng_double(&r);
    double fy = 0.02 + 0.1 * wl_rng_double(&r);
    double cx = tile * wl_rng_double(&r), cy = tile * wl_rng_double(&r);
    double rad2 = (tile / 4.0) * (tile / 4.0);
    for (uint32_t y = 0; y < tile; y++)
        for (uint32_t x = 0; x < tile; x++) {
            double v = 110.0 + 60.0 * sin(fx * x) * cos(fy * y);
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < rad2)
                v += 60.0;
            v += (double)(wl_rng_next(&r) % 41) - 20.0;
            px[(size_t)y * tile + x] =
                (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
        }
    return 0;
}

static int blur_check(const wl_ctx *ctx, size_t i, const void *out,
                      size_t len, char *err, size_t errlen)
{
    size_t tile = (size_t)wl_params_int(ctx->params, "tile");
    if (len != tile * tile)
        return wl_errf(err, errlen,
                       "blur: task %zu: output is %zu bytes, expected %zu", i,
                       len, tile * tile);
    /* Every output pixel is a weighted mean of input pixels, so it lies
     * within the input's range. */
    ex_buf b = {0};
    if (wl_build_private(ctx, i, &b))
        return wl_errf(err, errlen, "blur: task %zu: out of memory", i);
    const unsigned char *src = b.data + HEADER, *dst = out;
    unsigned lo = 255, hi = 0, olo = 255, ohi = 0;
    for (size_t k = 0; k < len; k++) {
        lo = src[k] < lo ? src[k] : lo;
        hi = src[k] > hi ? src[k] : hi;
        olo = dst[k] < olo ? dst[k] : olo;
        ohi = dst[k] > ohi ? dst[k] : ohi;
    }
    ex_buf_free(&b);
    if (olo < lo || ohi > hi)
        return wl_errf(err, errlen,
                       "blur: task %zu: output range [%u, %u] exceeds the "
                       "input's [%u, %u]", i, olo, ohi, lo, hi);
    return 0;
}

static const struct wl_ops blur_ops = {
    .build = blur_build,
    .stages = {wl_blur_task, NULL},
    .check = blur_check,
};

const wl_workload wl_blur_workload = {
    .name = "blur",
    .kind = WL_CPU,
    .help = "separable Gaussian blur of grayscale image tiles (pixels are "
            "the payload)",
    .params = blur_params,
    .nparams = sizeof blur_params / sizeof blur_params[0],
    .ops = &blur_ops,
};
