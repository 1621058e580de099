/*
 * test_wl_http.c: the I/O workloads against a loopback libmicrohttpd
 * server: http (status codes, transfer errors, timeouts, one reused handle
 * per thread, a fresh one in a forked child) and fetch-hash (the two-stage
 * chain).
 */
#include "wl_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ http */

static atomic_int server_stopping;

/* "/status/<code>" answers that status; anything else 200 with `bytes`
 * bytes of a fixed pattern after `delay_ms`. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    unsigned status = 200;
    size_t bytes = 0;
    if (strncmp(url, "/status/", 8) == 0) {
        status = (unsigned)atoi(url + 8);
    } else {
        const char *b = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                    "bytes");
        const char *d = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                    "delay_ms");
        bytes = b ? (size_t)strtoul(b, NULL, 10) : 0;
        long delay = d ? strtol(d, NULL, 10) : 0;
        for (long t = 0; t < delay && !atomic_load(&server_stopping); t += 10)
            wl_sleep_ns(10 * 1000000ULL);
    }
    char *body = malloc(bytes ? bytes : 1);
    if (!body)
        return MHD_NO;
    for (size_t k = 0; k < bytes; k++)
        body[k] = (char)('a' + k % 26);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(bytes, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Daemon *start_server(char *base, size_t len)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    atomic_store(&server_stopping, 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_END);
    assert_non_null(d);
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    assert_true(info->port > 0);
    snprintf(base, len, "http://127.0.0.1:%u/", (unsigned)info->port);
    return d;
}

static void stop_server(struct MHD_Daemon *d)
{
    atomic_store(&server_stopping, 1);
    MHD_stop_daemon(d);
}

/* A loopback port nobody listens on: bound, read, closed. */
static unsigned closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t alen = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static int http_get(const char *url, uint32_t connect_ms, uint32_t total_ms,
                    ex_buf *out)
{
    ex_buf in = {0};
    assert_int_equal(wl_http_encode(&in, connect_ms, total_ms, url), 0);
    int code = wl_http_task(in.data, in.len, out);
    ex_buf_free(&in);
    return code;
}

static void test_http_needs_server(void **state)
{
    (void)state;
    wl_params *p = params_of("http", NULL, 0);
    wl_ctx *ctx = (wl_ctx *)1;
    assert_int_equal(
        wl_prepare(wl_find("http"), p, 3, 1, 0, &ctx, err, sizeof err),
        EX_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(err, "http needs a server"));
    /* Parameters of another workload are refused. */
    assert_int_equal(
        wl_prepare(wl_find("fetch-hash"), p, 3, 1, 0, &ctx, err, sizeof err),
        EX_EINVAL);
    wl_params_destroy(p);
}

static void test_http(void **state)
{
    (void)state;
    char base[128], kv_base[160];
    struct MHD_Daemon *d = start_server(base, sizeof base);
    snprintf(kv_base, sizeof kv_base, "base_url=%s", base);

    /* Through the workload: URLs on the embedded server's conventions. */
    const char *kv[] = {kv_base, "bytes=5000", "latency_ms=1"};
    wl_ctx *ctx = prepare("http", kv, 3, 4, 1);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    assert_non_null(strstr((const char *)in + 8, "/?delay_ms=1&bytes=5000"));
    assert_null(strstr((const char *)in + 8, ":/" "/?")); /* one slash */
    char hex1[65], hex2[65];
    run_all(ctx, hex1); /* four GETs on one reused handle */
    run_all(ctx, hex2);
    assert_string_equal(hex1, hex2);
    ex_buf out = {0};
    assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
    assert_int_equal(out.len, 5000);
    assert_int_equal(out.data[0], 'a');
    assert_int_equal(out.data[27], 'b');
    assert_int_equal(wl_check(ctx, 0, out.data, 10, err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&out);
    wl_cleanup(ctx);

    /* Status codes: non-2xx is the task code, the body is dropped. */
    char url[256];
    snprintf(url, sizeof url, "%sstatus/500", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 500);
    assert_int_equal(out.len, 0);
    snprintf(url, sizeof url, "%sstatus/404", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 404);
    snprintf(url, sizeof url, "%sstatus/204", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 0);
    assert_int_equal(out.len, 0);
    char text[128];
    assert_string_equal(wl_task_code_text(500, text, sizeof text), "HTTP 500");

    /* Transfer errors: 1000 + CURLcode. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", closed_port());
    assert_int_equal(http_get(url, 5000, 60000, &out),
                     WL_CODE_CURL_BASE + CURLE_COULDNT_CONNECT);
    wl_task_code_text(WL_CODE_CURL_BASE + CURLE_COULDNT_CONNECT, text,
                      sizeof text);
    assert_non_null(strstr(text, "curl error 7"));
    snprintf(url, sizeof url, "%s?delay_ms=5000&bytes=1", base);
    assert_int_equal(http_get(url, 5000, 200, &out),
                     WL_CODE_CURL_BASE + CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(http_get("file:///etc/passwd", 5000, 60000, &out),
                     WL_CODE_CURL_BASE + CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal(out.len, 0);
    /* The handle still works after errors. */
    snprintf(url, sizeof url, "%s?bytes=3", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 0);
    assert_int_equal(out.len, 3);
    ex_buf_free(&out);

    /* Malformed input: no NUL, or an empty URL. */
    unsigned char bad[12] = {0};
    memcpy(bad + 8, "http", 4);
    assert_int_equal(wl_http_task(bad, sizeof bad, &out), WL_CODE_EINPUT);
    assert_int_equal(wl_http_task(bad, 9, &out), WL_CODE_EINPUT);

    /* url overrides: no length expectation in the check. */
    snprintf(kv_base, sizeof kv_base, "url=%s?bytes=7", base);
    const char *kv2[] = {kv_base};
    ctx = prepare("http", kv2, 1, 2, 1);
    run_all(ctx, hex1);
    wl_cleanup(ctx);

    stop_server(d);
    wl_http_thread_cleanup();
}

struct http_thread_arg {
    const char *base;
    int failures;
};

static void *http_thread(void *p)
{
    struct http_thread_arg *a = p;
    char url[256];
    for (int k = 0; k < 5; k++) {
        snprintf(url, sizeof url, "%s?bytes=%d", a->base, 100 + k);
        ex_buf out = {0};
        if (http_get(url, 5000, 60000, &out) != 0 || out.len != (size_t)(100 + k))
            a->failures++;
        ex_buf_free(&out);
    }
    return NULL; /* the key destructor frees this thread's handle */
}

static void test_http_threads(void **state)
{
    (void)state;
    char base[128];
    struct MHD_Daemon *d = start_server(base, sizeof base);
    pthread_t t[4];
    struct http_thread_arg args[4];
    for (int k = 0; k < 4; k++) {
        args[k].base = base;
        args[k].failures = 0;
        assert_int_equal(pthread_create(&t[k], NULL, http_thread, &args[k]),
                         0);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pthread_join(t[k], NULL), 0);
        assert_int_equal(args[k].failures, 0);
    }

    /* A forked child gets a handle of its own even if this thread has one. */
    char url[256];
    snprintf(url, sizeof url, "%s?bytes=10", base);
    ex_buf out = {0};
    assert_int_equal(http_get(url, 5000, 60000, &out), 0);
    ex_buf_free(&out);
    ex_buf in = {0};
    assert_int_equal(wl_http_encode(&in, 5000, 60000, url), 0);
    int st = run_in_child(wl_http_task, in.data, in.len, 60000);
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(wl_http_task(in.data, in.len, &out), 0); /* still ours */
    assert_int_equal(out.len, 10);
    ex_buf_free(&out);
    ex_buf_free(&in);
    stop_server(d);
    wl_http_thread_cleanup();
}

static void test_fetch_hash(void **state)
{
    (void)state;
    char base[128], kv_base[160];
    struct MHD_Daemon *d = start_server(base, sizeof base);
    snprintf(kv_base, sizeof kv_base, "base_url=%s", base);
    const char *kv[] = {kv_base, "bytes=3000", "latency_ms=0"};
    wl_ctx *ctx = prepare("fetch-hash", kv, 3, 3, 1);
    assert_int_equal(wl_stage_count(ctx), 2);
    assert_ptr_equal(wl_stage_fn(ctx, 0), wl_task_fn(ctx));
    assert_ptr_equal(wl_stage_fn(ctx, 0), wl_http_task);
    assert_ptr_equal(wl_stage_fn(ctx, 1), wl_hash_task);
    assert_null(wl_stage_fn(ctx, 2));

    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    ex_buf body = {0}, hash = {0};
    assert_int_equal(wl_stage_fn(ctx, 0)(in, len, &body), 0);
    assert_int_equal(body.len, 3000);
    assert_int_equal(wl_stage_fn(ctx, 1)(body.data, body.len, &hash), 0);
    assert_int_equal(hash.len, 32);
    /* The expected hash, from the server's known pattern. */
    char pattern[3000], want[65], got[65];
    for (size_t k = 0; k < sizeof pattern; k++)
        pattern[k] = (char)('a' + k % 26);
    sha256_hex(pattern, sizeof pattern, want);
    hex_of(hash.data, got);
    assert_string_equal(got, want);
    assert_int_equal(wl_check(ctx, 0, hash.data, hash.len, err, sizeof err),
                     0);
    assert_int_equal(wl_check(ctx, 0, body.data, body.len, err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&body);
    ex_buf_free(&hash);
    char hex[65];
    run_all(ctx, hex);
    wl_cleanup(ctx);
    stop_server(d);
    wl_http_thread_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_needs_server),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_threads),
        cmocka_unit_test(test_fetch_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
