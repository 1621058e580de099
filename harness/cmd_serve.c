/*
 * cmd_serve.c: `poolbench serve`, the loopback HTTP server (server/) in the
 * foreground until SIGINT or SIGTERM.
 */
#include "cli.h"
#include "commands.h"
#include "httpd.h"
#include "server_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void serve_usage(FILE *f)
{
    fputs("usage: poolbench serve [--port N] [--bind ADDR] [--loops N]\n"
          "  Serve the loopback HTTP server in the foreground until SIGINT or\n"
          "  SIGTERM. Routes: /health, /delay/<seconds>, /bytes/<n>,\n"
          "  /status/<code>, /?delay_ms=D&bytes=N&status=C.\n"
          "  --port N     0..65535, default 0 (an ephemeral port)\n"
          "  --bind ADDR  IPv4 address, default 127.0.0.1\n"
          "  --loops N    event loops (threads), 1..8, default one per four\n"
          "               CPUs; on a machine of its own, one per CPU serves most\n"
          "  --help       this text\n"
          "  Run it with real-time priority (chrt -f 1 poolbench serve ...) when\n"
          "  the client shares its CPUs, as the harness's own server does.\n",
          f);
}

#define SERVE_ACCEPTED "--port N, --bind ADDR, --loops N, --help"

/* The command line of `poolbench serve`. */
typedef struct serve_opts {
    const char *bind_addr;
    int port;
    unsigned loops;
} serve_opts;

/* An option given without its value: one line naming it and what it takes. */
static int missing_value(int opt)
{
    switch (opt) {
    case 'p':
        return pb_usage_error("serve", "--port: missing value (accepted: an integer in "
                              "[0, 65535])");
    case 'b':
        return pb_usage_error("serve", "--bind: missing value (accepted: an IPv4 address such "
                              "as 127.0.0.1)");
    default:
        return pb_usage_error("serve", "--loops: missing value (accepted: an integer in "
                              "[1, %d])", PB_HTTPD_MAX_LOOPS);
    }
}

/* One option into *o: 0, or the exit status of a usage error. */
static int parse_option(int ch, const char *arg, serve_opts *o)
{
    uint64_t v;
    struct in_addr a;
    switch (ch) {
    case 'p':
        if (!pb_parse_u64("serve", "--port", arg, 0, 65535, false, &v))
            return PB_EXIT_USAGE;
        o->port = (int)v;
        return 0;
    case 'b':
        if (inet_pton(AF_INET, arg, &a) != 1)
            return pb_usage_error("serve", "bad --bind '%s' (accepted: an IPv4 address such as "
                                  "127.0.0.1)", arg);
        o->bind_addr = arg;
        return 0;
    default: /* 'l' */
        if (!pb_parse_u64("serve", "--loops", arg, 1, PB_HTTPD_MAX_LOOPS, false, &v))
            return PB_EXIT_USAGE;
        o->loops = (unsigned)v;
        return 0;
    }
}

/* The command line into *o: 0 to go on, -1 after --help, or 2. */
static int parse_cli(int argc, char **argv, serve_opts *o)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"loops", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    *o = (serve_opts){.bind_addr = "127.0.0.1"};
    int ch, rc;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'h') {
            serve_usage(stdout);
            return -1;
        }
        if (ch == ':')
            return missing_value(optopt);
        if (ch == '?')
            return pb_usage_error("serve", "unknown option '%s' (accepted: %s)", argv[optind - 1],
                                  SERVE_ACCEPTED);
        if ((rc = parse_option(ch, optarg, o)))
            return rc;
    }
    if (optind < argc)
        return pb_usage_error("serve", "unexpected argument '%s' (accepted: %s)", argv[optind],
                              SERVE_ACCEPTED);
    return 0;
}

/* Serves until SIGINT or SIGTERM, which *set holds (blocked); 0 or 1. */
static int serve_until_signal(const serve_opts *o, const sigset_t *set)
{
    pb_httpd *h;
    int rc = pb_httpd_start_loops(o->bind_addr, o->port, o->loops, &h);
    if (rc != 0) {
        fprintf(stderr, "poolbench serve: cannot listen on %s:%d: %s\n", o->bind_addr, o->port,
                strerror(-rc));
        return 1;
    }
    int status = 0;
    if (printf("poolbench serve: listening on http://%s:%d\n", o->bind_addr, pb_httpd_port(h)) <
            0 ||
        fflush(stdout) != 0) {
        fprintf(stderr, "poolbench serve: cannot write to stdout: %s\n", strerror(errno));
        status = 1;
    } else {
        int sig;
        rc = sigwait(set, &sig);
        if (rc != 0) {
            fprintf(stderr, "poolbench serve: sigwait: %s\n", strerror(rc));
            status = 1;
        }
    }
    pb_httpd_stop(h);
    return status;
}

int pb_cmd_serve(int argc, char **argv)
{
    serve_opts o;
    int rc = parse_cli(argc, argv, &o);
    if (rc)
        return rc < 0 ? (fflush(stdout) == 0 ? 0 : 1) : rc;
    /* Blocked before the server's threads exist, so they inherit the mask
     * and the signal can only be taken by sigwait here. */
    sigset_t set, old;
    if (sigemptyset(&set) != 0 || sigaddset(&set, SIGTERM) != 0 ||
        sigaddset(&set, SIGINT) != 0) {
        perror("poolbench serve: sigset");
        return 1;
    }
    rc = pthread_sigmask(SIG_BLOCK, &set, &old);
    if (rc != 0) {
        fprintf(stderr, "poolbench serve: pthread_sigmask: %s\n", strerror(rc));
        return 1;
    }
    pb_raise_nofile_limit();
    int status = serve_until_signal(&o, &set);
    /* Consume a second SIGINT/SIGTERM already pending, so that unblocking
     * does not kill the process on its way out. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
    rc = pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0 && status == 0) {
        fprintf(stderr, "poolbench serve: pthread_sigmask: %s\n", strerror(rc));
        status = 1;
    }
    return status;
}
