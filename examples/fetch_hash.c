/*
 * fetch_hash.c: a then-chain, the example of poolbench's README.  For each
 * URL on the command line one task fetches the body with libcurl, and the
 * task chained to it with ex_future_then hashes that body with SHA-256
 * (OpenSSL's libcrypto).  Every URL is in flight at once on a pool of
 * worker processes (or threads); the digests are printed in the order of
 * the URLs, as sha256sum prints them.
 *
 *   cc fetch_hash.c $(pkg-config --cflags --libs poolbench-executors libcurl libcrypto)
 *   ./a.out [-e seq|threads|procs] URL...
 *
 * Exit status: 0 when every URL was fetched and hashed; 1 when one was not
 * (the reason on stderr: an HTTP status, curl's message, a pool error; the
 * other URLs are still printed); 2 for bad usage.
 */
#include <poolbench/executor.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A task's own failure codes (ex_future_task_code): an HTTP status
 * (400..599) as it is, curl's error code + CURL_BASE, or no memory. */
enum { CURL_BASE = 1000, NO_MEMORY = 2000 };

static size_t append_body(char *data, size_t size, size_t n, void *out)
{
    /* Returning less than it was given makes curl fail the transfer. */
    return ex_buf_append(out, data, size * n) == 0 ? size * n : 0;
}

/* Task 1: the URL's bytes in, the response body out. */
static int fetch(const void *in, size_t len, ex_buf *out)
{
    char url[4096];
    if (len >= sizeof url)
        return CURL_BASE + CURLE_URL_MALFORMAT;
    memcpy(url, in, len);
    url[len] = 0;
    CURL *h = curl_easy_init();
    if (!h)
        return CURL_BASE + CURLE_FAILED_INIT;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        return CURL_BASE + (int)rc;
    return status >= 400 ? (int)status : 0;
}

/* Task 2, chained to task 1: the body in, its 32-byte SHA-256 out. */
static int sha256(const void *in, size_t len, ex_buf *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(in, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return NO_MEMORY;
    return ex_buf_append(out, md, mdlen) == 0 ? 0 : NO_MEMORY;
}

/* Prints one URL's digest, or why there is none; 0 or 1. */
static int report(const char *url, ex_future *hashed)
{
    const void *md;
    size_t len;
    int rc = ex_future_result(hashed, &md, &len, EX_FOREVER);
    if (rc == 0) {
        for (size_t i = 0; i < len; i++)
            printf("%02x", ((const unsigned char *)md)[i]);
        printf("  %s\n", url);
        return 0;
    }
    /* A failed fetch fails the hash chained to it, with the same code. */
    int code = rc == EX_ETASK ? ex_future_task_code(hashed) : 0;
    if (code >= CURL_BASE && code < NO_MEMORY)
        fprintf(stderr, "fetch_hash: %s: %s\n", url, curl_easy_strerror((CURLcode)(code - CURL_BASE)));
    else if (code > 0 && code < CURL_BASE)
        fprintf(stderr, "fetch_hash: %s: HTTP status %d\n", url, code);
    else
        fprintf(stderr, "fetch_hash: %s: %s%s\n", url, ex_strerror(rc),
                code == NO_MEMORY ? " (out of memory)" : "");
    return 1;
}

int main(int argc, char **argv)
{
    ex_kind kind = EX_PROCS;
    int opt;
    while ((opt = getopt(argc, argv, "e:")) != -1)
        if (opt != 'e' || ex_kind_parse(optarg, &kind) != 0) {
            fprintf(stderr, "usage: %s [-e seq|threads|procs] URL...\n", argv[0]);
            return 2;
        }
    if (optind == argc) {
        fprintf(stderr, "usage: %s [-e seq|threads|procs] URL...\n", argv[0]);
        return 2;
    }
    /* Before any thread or worker process exists. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fetch_hash: curl_global_init failed\n");
        return 1;
    }
    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = 4;
    ex_executor *ex;
    int rc = ex_create(&cfg, &ex);
    if (rc) {
        fprintf(stderr, "fetch_hash: ex_create: %s\n", ex_strerror(rc));
        curl_global_cleanup();
        return 1;
    }
    int n = argc - optind, failed = 0;
    ex_future **fetched = calloc((size_t)n, sizeof *fetched);
    ex_future **hashed = calloc((size_t)n, sizeof *hashed);
    for (int i = 0; fetched && hashed && i < n; i++) {
        const char *url = argv[optind + i]; /* argv outlives the futures */
        rc = ex_submit(ex, fetch, url, strlen(url), &fetched[i]);
        if (rc == 0)
            rc = ex_future_then(fetched[i], ex, sha256, &hashed[i]);
        if (rc)
            fprintf(stderr, "fetch_hash: %s: %s\n", url, ex_strerror(rc));
    }
    for (int i = 0; fetched && hashed && i < n; i++)
        failed |= hashed[i] ? report(argv[optind + i], hashed[i]) : 1;
    for (int i = 0; fetched && hashed && i < n; i++) {
        if (fetched[i])
            ex_future_release(fetched[i]);
        if (hashed[i])
            ex_future_release(hashed[i]);
    }
    if (!fetched || !hashed) {
        fprintf(stderr, "fetch_hash: out of memory\n");
        failed = 1;
    }
    free(fetched);
    free(hashed);
    ex_destroy(ex);
    curl_global_cleanup();
    return failed;
}
