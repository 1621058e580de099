/*
 * proc_counts.h: counts this process's open fds, threads and child
 * processes from /proc, so tests can prove that ex_destroy (or a server
 * stop) leaves nothing behind.
 */
#ifndef POOLBENCH_PROC_COUNTS_H
#define POOLBENCH_PROC_COUNTS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline int pc_count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Open fds, not counting the one opendir uses to list them. */
static inline int pc_open_fds(void)
{
    int n = pc_count_dir("/proc/self/fd");
    return n < 0 ? n : n - 1;
}

static inline int pc_threads(void)
{
    return pc_count_dir("/proc/self/task");
}

/* Processes whose parent is this process, zombies included: returns how
 * many, and stores up to max of their pids in out (out may be NULL). */
static inline int pc_child_pids(pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    pid_t me = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        /* pid (comm) state ppid ...; comm may hold spaces or ')' */
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == me) {
            if (out && n < max)
                out[n] = (pid_t)atoi(e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static inline int pc_children(void)
{
    return pc_child_pids(NULL, 0);
}

/* All three at once. */
typedef struct pc_counts {
    int fds, threads, children;
} pc_counts;

static inline pc_counts pc_take(void)
{
    pc_counts c = {pc_open_fds(), pc_threads(), pc_children()};
    return c;
}

/* Waits until the counts equal want (a joined thread may linger in /proc
 * an instant; nothing else should), polling every 10 ms for up to polls
 * times; returns the last counts taken. */
static inline pc_counts pc_settle(pc_counts want, int polls)
{
    pc_counts now = pc_take();
    for (int t = 0; t < polls && memcmp(&now, &want, sizeof now) != 0; t++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        now = pc_take();
    }
    return now;
}

#endif
