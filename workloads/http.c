/*
 * http.c: the `http` workload (io): a libcurl GET per task, by default of
 * poolbench's own loopback server with injected latency and payload size
 * (<base_url>/?delay_ms=<ms>&bytes=<n>), or of any URL given with `url`.
 * The input carries the URL and both timeouts; the output is the body.
 *
 * One curl easy handle per worker, reused so that connections are kept
 * alive: a _Thread_local pointer, freed at thread exit by a pthread key
 * destructor.  In the process pool each worker process gets its own: a
 * forked child may inherit the forking thread's handle, whose sockets the
 * parent still uses, so a handle created by another pid is abandoned (not
 * cleaned up: curl could write to those shared sockets) and a fresh one
 * made.  curl_global_init runs once, under pthread_once.
 *
 * Task codes: a non-2xx status is returned as itself (e.g. 500); a transfer
 * error as WL_CODE_CURL_BASE + CURLcode (1007 connect refused, 1028
 * timeout); the output is left empty in both cases.
 */
#include "wl_internal.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const wl_param_spec wl_http_params[WL_HTTP_NPARAMS] = {
    {.name = "base_url", .type = WL_PARAM_STRING, .def_string = "",
     .min_int = 0, .max_int = 2048, .flags = WL_PARAM_INTERNAL,
     .help = "base URL of poolbench's embedded server"},
    {.name = "url", .type = WL_PARAM_STRING, .def_string = "", .min_int = 0,
     .max_int = 4096,
     .help = "fetch this URL instead (overrides latency_ms and bytes)"},
    {.name = "latency_ms", .type = WL_PARAM_INT, .def_int = 10, .min_int = 0,
     .max_int = 600000, .help = "server-side delay per request"},
    {.name = "bytes", .type = WL_PARAM_INT, .def_int = 1024, .min_int = 0,
     .max_int = 1 << 30, .help = "response body size"},
    {.name = "connect_timeout_ms", .type = WL_PARAM_INT, .def_int = 5000,
     .min_int = 1, .max_int = 600000, .help = "connect timeout"},
    {.name = "timeout_ms", .type = WL_PARAM_INT, .def_int = 60000,
     .min_int = 1, .max_int = 3600000, .help = "whole-transfer timeout"},
};

/* ------------------------------------------------------ per-worker handle */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;
static pthread_key_t handle_key;
static int key_rc = -1;

static _Thread_local CURL *tl_handle;
static _Thread_local pid_t tl_pid;
/* The handle inherited through fork, kept reachable (not freed, see the
 * top) so that leak checkers do not report it as lost.  Only the thread
 * that forked can have one, so only it writes here; volatile keeps the
 * otherwise unread store. */
static CURL *volatile inherited_handle;

static void handle_destructor(void *h)
{
    /* Runs in the exiting thread, whose thread-locals are still valid. */
    if (h && h == tl_handle && tl_pid == getpid()) {
        curl_easy_cleanup(h);
        tl_handle = NULL;
    }
}

/* Bumped in every child of fork() (pthread_atfork), so that a thread can
 * tell an inherited handle from its own without a getpid() system call per
 * request. */
static atomic_uint fork_generation;
static _Thread_local unsigned tl_generation;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void init_globals(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    key_rc = pthread_key_create(&handle_key, handle_destructor);
    pthread_atfork(NULL, NULL, on_fork_child);
}

/* The calling thread's handle, or NULL with *code set. */
static CURL *thread_handle(int *code)
{
    pthread_once(&init_once, init_globals);
    if (global_rc != CURLE_OK) {
        *code = WL_CODE_CURL_BASE + (int)global_rc;
        return NULL;
    }
    unsigned gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    if (tl_handle && tl_generation != gen) {
        /* Inherited through fork: abandoned on purpose (see the top). */
        inherited_handle = tl_handle;
        tl_handle = NULL;
        if (key_rc == 0)
            pthread_setspecific(handle_key, NULL);
    }
    if (!tl_handle) {
        tl_handle = curl_easy_init();
        if (!tl_handle) {
            *code = WL_CODE_ENOMEM;
            return NULL;
        }
        tl_pid = getpid();
        tl_generation = gen;
        if (key_rc == 0)
            pthread_setspecific(handle_key, tl_handle);
    }
    return tl_handle;
}

void wl_http_thread_cleanup(void)
{
    if (tl_handle && tl_pid == getpid()) {
        curl_easy_cleanup(tl_handle);
        if (key_rc == 0)
            pthread_setspecific(handle_key, NULL);
    }
    tl_handle = NULL;
}

/* ------------------------------------------------------------------ task */

static size_t write_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    size_t n = size * nmemb;
    /* Returning less than n makes curl fail with CURLE_WRITE_ERROR. */
    return ex_buf_append(arg, ptr, n) ? 0 : n;
}

int wl_http_encode(ex_buf *in, uint32_t connect_timeout_ms,
                   uint32_t timeout_ms, const char *url)
{
    size_t n = strlen(url);
    unsigned char *p = ex_buf_extend(in, 8 + n + 1);
    if (!p)
        return EX_ENOMEM;
    wl_put_le32(p, connect_timeout_ms);
    wl_put_le32(p + 4, timeout_ms);
    memcpy(p + 8, url, n + 1);
    return 0;
}

int wl_http_task(const void *in, size_t len, ex_buf *out)
{
    const unsigned char *p = in;
    /* Header, at least one URL byte, and a NUL that ends the input. */
    if (len < 10 || memchr(p + 8, '\0', len - 8) != p + len - 1)
        return WL_CODE_EINPUT;
    long connect_ms = (long)wl_get_le32(p), total_ms = (long)wl_get_le32(p + 4);
    const char *url = (const char *)p + 8;

    int code = 0;
    CURL *h = thread_handle(&code);
    if (!h)
        return code;
    size_t start = out->len;
    /* Set every option each time: the handle is shared by every task this
     * worker runs (the connection cache is what we want to keep). */
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
    if (rc == CURLE_OK)                                                        \
    rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM timeouts in a threaded worker */
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SET(CURLOPT_TIMEOUT_MS, total_ms);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_WRITEFUNCTION, write_body);
    SET(CURLOPT_WRITEDATA, (void *)out);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
#undef SET
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    /* Do not leave a pointer to this task's buffer in the shared handle. */
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)NULL);
    if (rc != CURLE_OK) {
        out->len = start;
        return WL_CODE_CURL_BASE + (int)rc;
    }
    long status = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (status < 200 || status > 299) {
        out->len = start;
        return status >= 100 && status <= 599
                   ? (int)status
                   : WL_CODE_CURL_BASE + (int)CURLE_WEIRD_SERVER_REPLY;
    }
    return 0;
}

/* ------------------------------------------------------------- instances */

struct http_priv {
    char *url;
    int64_t expect_len; /* -1 when the URL was given (body unknown) */
};

static int is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

int wl_http_validate(const wl_params *p, char *err, size_t errlen)
{
    const char *url = wl_params_string(p, "url");
    const char *base = wl_params_string(p, "base_url");
    if (url[0] && !is_http_url(url))
        return wl_errf(err, errlen,
                       "parameter 'url' must start with http:// or https://, "
                       "got '%s'", url);
    if (base[0] && !is_http_url(base))
        return wl_errf(err, errlen,
                       "parameter 'base_url' must start with http:// or "
                       "https://, got '%s'", base);
    return 0;
}

int wl_http_setup(wl_ctx *ctx, char *err, size_t errlen)
{
    struct http_priv *priv = calloc(1, sizeof *priv);
    if (!priv)
        return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
    ctx->priv = priv;
    const char *url = wl_params_string(ctx->params, "url");
    const char *base = wl_params_string(ctx->params, "base_url");
    if (url[0]) {
        priv->url = strdup(url);
        priv->expect_len = -1;
    } else if (!base[0]) {
        return wl_errf(err, errlen,
                       "%s needs a server: set base_url (poolbench run starts "
                       "its own and sets it) or url=<an httpbin-compatible "
                       "URL>", ctx->w->name);
    } else {
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
            n--;
        int64_t ms = wl_params_int(ctx->params, "latency_ms");
        int64_t bytes = wl_params_int(ctx->params, "bytes");
        if (asprintf(&priv->url, "%.*s/?delay_ms=%" PRId64 "&bytes=%" PRId64,
                     (int)n, base, ms, bytes) < 0)
            priv->url = NULL;
        priv->expect_len = bytes;
    }
    if (!priv->url)
        return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
    return 0;
}

void wl_http_teardown(wl_ctx *ctx)
{
    struct http_priv *priv = ctx->priv;
    if (priv) {
        free(priv->url);
        free(priv);
        ctx->priv = NULL;
    }
}

int wl_http_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    (void)i;
    const struct http_priv *priv = ctx->priv;
    return wl_http_encode(
        in, (uint32_t)wl_params_int(ctx->params, "connect_timeout_ms"),
        (uint32_t)wl_params_int(ctx->params, "timeout_ms"), priv->url);
}

int64_t wl_http_expected_len(const wl_ctx *ctx)
{
    const struct http_priv *priv = ctx->priv;
    return priv ? priv->expect_len : -1;
}

static int http_check(const wl_ctx *ctx, size_t i, const void *out,
                      size_t len, char *err, size_t errlen)
{
    (void)out;
    int64_t expect = wl_http_expected_len(ctx);
    if (expect >= 0 && (uint64_t)len != (uint64_t)expect)
        return wl_errf(err, errlen,
                       "http: task %zu: body is %zu bytes, expected %" PRId64,
                       i, len, expect);
    return 0;
}

static const struct wl_ops http_ops = {
    .validate = wl_http_validate,
    .setup = wl_http_setup,
    .teardown = wl_http_teardown,
    .build = wl_http_build,
    .stages = {wl_http_task, NULL},
    .check = http_check,
};

const wl_workload wl_http_workload = {
    .name = "http",
    .kind = WL_IO,
    .help = "libcurl GET per task (embedded server with latency_ms and "
            "bytes, or url)",
    .params = wl_http_params,
    .nparams = WL_HTTP_NPARAMS,
    .ops = &http_ops,
};
