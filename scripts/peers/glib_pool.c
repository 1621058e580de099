/*
 * glib_pool.c: the peer figure for `poolbench overhead`: GLib's
 * GThreadPool running N empty tasks on W threads (push N, then free with
 * wait), after a warm-up round of the same size.  No futures and no
 * per-task measurements: the bare hand-off.
 * Built and run by scripts/peers/run.sh.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static gint done;

static void empty_task(gpointer data, gpointer user)
{
    (void)data;
    (void)user;
    g_atomic_int_inc(&done);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: glib_pool TASKS WORKERS\n");
        return 2;
    }
    int n = atoi(argv[1]), w = atoi(argv[2]);
    if (n < 1 || w < 1) {
        fprintf(stderr, "glib_pool: TASKS and WORKERS must be >= 1\n");
        return 2;
    }
    GError *err = NULL;
    GThreadPool *pool = g_thread_pool_new(empty_task, NULL, w, TRUE, &err);
    if (!pool) {
        fprintf(stderr, "glib_pool: %s\n", err ? err->message : "cannot create the pool");
        return 1;
    }
    /* Warm-up round of the same size, as `poolbench overhead` does: it
     * faults in the allocator's memory and wakes every worker. */
    for (int i = 0; i < n; i++)
        g_thread_pool_push(pool, GINT_TO_POINTER(i + 1), NULL);
    while (g_atomic_int_get(&done) < n)
        g_thread_yield();
    g_atomic_int_set(&done, 0);
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        g_thread_pool_push(pool, GINT_TO_POINTER(i + 1), NULL);
    g_thread_pool_free(pool, FALSE, TRUE);
    double t1 = now_s();
    if (g_atomic_int_get(&done) != n) {
        fprintf(stderr, "glib_pool: %d of %d tasks ran\n", g_atomic_int_get(&done), n);
        return 1;
    }
    printf("{\"peer\":\"glib GThreadPool\",\"workers\":%d,\"tasks\":%d,"
           "\"throughput_ns_per_task\":%.1f}\n", w, n, (t1 - t0) * 1e9 / n);
    return 0;
}
