/*
 * glib_rss.c: the peer figure for `poolbench footprint`: how much GLib's
 * GThreadPool grows the resident set per queued task.  Every worker is
 * held by a gate task, N empty tasks are pushed and stay queued, and the
 * growth is divided by N.  GLib keeps no future per task: only its queue
 * node (and the pointer pushed), which is what the comparison shows.
 * Built and run by scripts/scale.py.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static gint gate_open, held, done;

static void task(gpointer data, gpointer user)
{
    (void)user;
    if (GPOINTER_TO_INT(data) == -1) {
        g_atomic_int_inc(&held);
        while (!g_atomic_int_get(&gate_open))
            g_usleep(100);
    }
    g_atomic_int_inc(&done);
}

static double rss_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (fp) {
        if (fscanf(fp, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(fp);
    }
    return resident < 0 ? -1 : (double)resident * (double)sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: glib_rss TASKS WORKERS\n");
        return 2;
    }
    int n = atoi(argv[1]), w = atoi(argv[2]);
    if (n < 1 || w < 1) {
        fprintf(stderr, "glib_rss: TASKS and WORKERS must be >= 1\n");
        return 2;
    }
    GError *err = NULL;
    GThreadPool *pool = g_thread_pool_new(task, NULL, w, TRUE, &err);
    if (!pool) {
        fprintf(stderr, "glib_rss: %s\n", err ? err->message : "cannot create the pool");
        return 1;
    }
    for (int i = 0; i < w; i++)
        g_thread_pool_push(pool, GINT_TO_POINTER(-1), NULL);
    while (g_atomic_int_get(&held) < w)
        g_usleep(200);
    double before = rss_bytes();
    for (int i = 0; i < n; i++)
        g_thread_pool_push(pool, GINT_TO_POINTER(i + 1), NULL);
    double pending = rss_bytes();
    g_atomic_int_set(&gate_open, 1);
    g_thread_pool_free(pool, FALSE, TRUE);
    if (g_atomic_int_get(&done) != n + w) {
        fprintf(stderr, "glib_rss: %d of %d tasks ran\n", g_atomic_int_get(&done), n + w);
        return 1;
    }
    printf("{\"peer\":\"glib GThreadPool\",\"workers\":%d,\"tasks\":%d,"
           "\"rss_pending_bytes_per_task\":%.1f}\n", w, n, (pending - before) / n);
    return 0;
}
