/*
 * server_proc.h - the loopback HTTP server as a process of its own.
 *
 * The harness runs the `http` workload against a server in a separate child
 * process, so that the server's CPU never counts against (or competes inside)
 * the process being measured: pb_server_start() forks it on an ephemeral
 * port and returns once it answers GET /health; pb_server_stop() ends it.
 * `poolbench serve` (harness/cmd_serve.c) runs the same server in the
 * foreground.
 */
#ifndef PB_SERVER_PROC_H
#define PB_SERVER_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* A running server process. Caller-owned; fill it with pb_server_start(). */
typedef struct pb_server {
    pid_t pid;    /* the child, or -1 once stopped (or never started) */
    int port;     /* the port it listens on */
    char url[48]; /* "http://127.0.0.1:PORT" (the address clients connect to) */
    int exit_fd;  /* private: reads EOF when the child has exited */
    /* The child runs at real-time priority (SCHED_FIFO 1): it asks for it
     * and gets it with root or CAP_SYS_NICE.  Hundreds of runnable client
     * threads would otherwise starve its event loop, which is then the
     * bottleneck (see pb_server_start). */
    bool realtime;
} pb_server;

/* Forks a child that serves pb_httpd on bind_addr (IPv4 literal; NULL means
 * "127.0.0.1"; for "0.0.0.0" clients are pointed at 127.0.0.1) and port (0
 * for an ephemeral one), and waits until it answers GET /health (at most
 * about 10 s). The child gets SIGTERM if the forking thread exits
 * (PR_SET_PDEATHSIG), closes every descriptor it inherited except 0, 1 and 2,
 * and exits cleanly on SIGTERM or SIGINT. Returns 0 and fills *out, or a
 * negative errno (-EINVAL bad argument, -ETIMEDOUT no answer in time,
 * -ECHILD the child died, or the child's own start error such as
 * -EADDRINUSE); on error no child is left behind.  The child asks for
 * SCHED_FIFO priority 1 before it starts its threads (they inherit it), and
 * stays at normal priority if that is refused (out->realtime says which):
 * its loop does a few tens of microseconds of work per request and then
 * sleeps, but at normal priority it is one thread among the hundreds of a
 * 512-worker client and waits its turn behind them.  Blocks until the server
 * answers. Fork it early: the child copies the caller, and if another thread
 * of the caller holds a lock at fork time the child may block on it. */
int pb_server_start(const char *bind_addr, int port, pb_server *out);

/* The server's base URL, without a trailing slash. Does not block. */
const char *pb_server_url(const pb_server *s);

/* Sends SIGTERM to the server, waits up to 5 s for it to exit, then sends
 * SIGKILL, and reaps it: no zombie, no descriptor left. Returns 0 if it
 * exited cleanly, -ETIMEDOUT if it had to be killed, -EIO if it exited
 * otherwise, -ECHILD if someone else reaped it. A stopped or never-started
 * server is a no-op returning 0. Blocks until the child is reaped. */
int pb_server_stop(pb_server *s);

/* Raises the soft descriptor limit to the hard one: every connection is a
 * descriptor, and the server is meant for thousands of them.  Best effort. */
void pb_raise_nofile_limit(void);

#endif /* PB_SERVER_PROC_H */
