/*
 * util.h: the helpers the tests share, so that each exists once: time and
 * the valgrind slow-down, sleeping, fd / thread / child counting from
 * /proc, capturing an fd's output, a child the application forks, a hang
 * detector, the gate tasks block on, the common tasks, and making
 * executors and reading results with cmocka's assertions.
 *
 * Include it first: it brings <cmocka.h> (cmocka's own prerequisites
 * included) and executors' internal header.  Everything is static inline:
 * a test pays only for what it uses.
 */
#ifndef POOLBENCH_TESTS_UTIL_H
#define POOLBENCH_TESTS_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ex_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define SEC 1000000000LL

/* ------------------------------------------------- time, valgrind, sleep */

/* tests/run.sh sets EX_TEST_VALGRIND=1 when it runs a binary under
 * valgrind (make test VALGRIND=1). */
static inline bool test_under_valgrind(void)
{
    return getenv("EX_TEST_VALGRIND") != NULL;
}

/* The valgrind slow-down factor, the one every test scales its generous
 * bounds and polling loops with: valgrind runs this code 10-50x slower,
 * but the waits it stretches are far above what any task needs. */
#define TEST_VALGRIND_SLOWDOWN 10

static inline int test_slow(void)
{
    return test_under_valgrind() ? TEST_VALGRIND_SLOWDOWN : 1;
}

/* How long a call may take before it counts as hung. */
static inline int64_t test_hang_ns(void)
{
    return 120 * SEC * test_slow();
}

/* An alarm for the whole binary: a hang anywhere fails it instead of
 * stalling the suite. */
static inline void test_alarm(void)
{
    alarm(test_slow() > 1 ? 1200 : 900);
}

static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / SEC, .tv_nsec = ns % SEC};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static inline void sleep_ms(long ms)
{
    sleep_ns((int64_t)ms * MS);
}

/* ex_now_ns in seconds. */
static inline double now_s(void)
{
    return (double)ex_now_ns() / 1e9;
}

/* ------------------------------------------------- fds, threads, children */

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

/* Whether /proc/<name>/stat names this process as its parent. */
static inline bool pc_is_my_child(const char *name, pid_t me)
{
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    /* pid (comm) state ppid ...; comm may hold spaces or ')' */
    char *rp = strrchr(buf, ')');
    char state;
    int ppid;
    return rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == me;
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
        if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
            !pc_is_my_child(e->d_name, me))
            continue;
        if (out && n < max)
            out[n] = (pid_t)atoi(e->d_name);
        n++;
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
        sleep_ms(10);
        now = pc_take();
    }
    return now;
}

/* ------------------------------------------------------ output capture */

/* An fd (stdout, stderr, ...) redirected into an unlinked temporary file
 * opened O_APPEND, so that forked children writing through inherited
 * copies never overwrite each other. */
typedef struct fd_capture {
    int target; /* the fd captured */
    int file;   /* the temporary file */
    int saved;  /* the target's original, restored by fd_capture_end */
} fd_capture;

/* Flushes stdio, then redirects target.  0, or -1 with errno set. */
static inline int fd_capture_begin(fd_capture *c, int target)
{
    char path[] = "/tmp/pb_test_capture_XXXXXX";
    c->target = target;
    c->saved = -1;
    c->file = mkstemp(path);
    if (c->file < 0)
        return -1;
    unlink(path);
    fflush(stdout);
    fflush(stderr);
    if (fcntl(c->file, F_SETFL, O_APPEND) != 0 ||
        (c->saved = dup(target)) < 0 || dup2(c->file, target) < 0)
        return -1;
    return 0;
}

/* Flushes stdio and puts the target back (the file stays readable). */
static inline void fd_capture_end(fd_capture *c)
{
    fflush(stdout);
    fflush(stderr);
    if (c->saved >= 0) {
        dup2(c->saved, c->target);
        close(c->saved);
        c->saved = -1;
    }
}

/* Everything captured, NUL-terminated, in a malloc'd buffer (NULL if it
 * cannot be read); *len (may be NULL) gets its length. */
static inline char *fd_capture_text(const fd_capture *c, size_t *len)
{
    off_t size = lseek(c->file, 0, SEEK_END);
    char *text = size < 0 ? NULL : calloc((size_t)size + 1, 1);
    if (!text || pread(c->file, text, (size_t)size, 0) != size) {
        free(text);
        return NULL;
    }
    if (len)
        *len = (size_t)size;
    return text;
}

static inline void fd_capture_close(fd_capture *c)
{
    fd_capture_end(c);
    if (c->file >= 0)
        close(c->file);
    c->file = -1;
}

/* Occurrences of `line` (a whole line, its newline included) in text. */
static inline size_t count_lines(const char *text, const char *line)
{
    size_t n = 0, l = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p += l)
        n++;
    return n;
}

/* Lines of s that start with prefix. */
static inline size_t count_prefixed_lines(const char *s, const char *prefix)
{
    size_t n = 0;
    for (const char *line = s; *line;) {
        n += strncmp(line, prefix, strlen(prefix)) == 0;
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return n;
}

/* ---------------------------------------------------- processes, hangs */

/* abort() without leaving a core file in the test's directory. */
static inline _Noreturn void crash_now(void)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    abort();
}

/* A child the application forks (no exec): it holds copies of every fd
 * of the process (a pool's control socket and pipes among them) until
 * app_child_end.  Its pid, or -1. */
static inline pid_t app_child_start(int *release)
{
    int p[2];
    *release = -1;
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        char c;
        while (read(p[0], &c, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
    }
    close(p[0]);
    if (pid < 0)
        close(p[1]);
    else
        *release = p[1];
    return pid;
}

/* Lets the child go and reaps it: true if it was reaped. */
static inline bool app_child_end(pid_t pid, int release)
{
    close(release);
    pid_t r;
    while ((r = waitpid(pid, NULL, 0)) < 0 && errno == EINTR) {
    }
    return r == pid;
}

typedef struct test_call {
    void (*fn)(void *);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool done;
} test_call;

static inline void *test_call_main(void *p)
{
    test_call *c = p;
    c->fn(c->arg);
    pthread_mutex_lock(&c->lock);
    c->done = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Runs fn(arg) in a helper thread; true if it returned within timeout_ns.
 * On a hang the thread (and its record) are leaked on purpose: the test
 * fails. */
static inline bool call_within(void (*fn)(void *), void *arg,
                               int64_t timeout_ns)
{
    test_call *c = calloc(1, sizeof *c);
    if (!c)
        return false;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_init(&c->lock, NULL);
    ex__cond_init(&c->cv);
    pthread_t th;
    if (pthread_create(&th, NULL, test_call_main, c) != 0)
        return false;
    int64_t dl = ex__deadline(timeout_ns);
    pthread_mutex_lock(&c->lock);
    while (!c->done && ex__cond_wait_until(&c->cv, &c->lock, dl) == 0) {
    }
    bool done = c->done;
    pthread_mutex_unlock(&c->lock);
    if (!done) {
        pthread_detach(th);
        return false;
    }
    pthread_join(th, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return true;
}

/* --------------------------------------------------------------- kinds */

/* The backends a test loop covers, as bits of ex_kind: test_kinds(which)
 * lists them.  EX_MPI is in the list only where it can run here (Open MPI
 * in this build, no sanitizer, no valgrind, and this binary started with
 * test_start, so that it can be the broker and the workers); where it
 * cannot, test_kinds leaves it out and says once per binary, on a line
 * "mpi: not tested here: <why>" that tests/run.sh counts as a skip. */
enum {
    KIND_SEQ = 1u << EX_SEQ,
    KIND_THREADS = 1u << EX_THREADS,
    KIND_PROCS = 1u << EX_PROCS,
    KIND_MPI = 1u << EX_MPI,
    KINDS_POOLS = KIND_THREADS | KIND_PROCS | KIND_MPI,
    KINDS_ALL = KIND_SEQ | KINDS_POOLS,
    /* The backends whose workers live in this process or are forked from
     * it, for the binaries that stay on them (test_faults: mpi's faults
     * end its whole job; test_gauges, test_create: a broken start and the
     * gauges): test_mpi.c checks those on mpi. */
    KINDS_LOCAL = KIND_SEQ | KIND_THREADS | KIND_PROCS,
};

#define NKINDS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct kind_list {
    ex_kind kind[4];
    size_t n;
} kind_list;

/* Set by test_start once this process is the test (not a broker or an MPI
 * worker) and has registered the tasks. */
static bool test_mpi_started __attribute__((unused));

/* Why EX_MPI cannot be tested in this process (NULL: it can).  Without
 * Open MPI, or in a sanitizer build (Open MPI's own leaks and threads
 * would fail the broker and workers there, not our code), or under
 * valgrind (Open MPI's processes are not ours to check). */
static inline const char *test_mpi_unavailable(void)
{
    const char *why = NULL;
    if (!ex_mpi_available(&why))
        return why;
    why = NULL;
#ifdef PB_SANITIZE
    why = "a sanitizer build: Open MPI's own leaks and threads would fail the "
          "broker and workers under " PB_SANITIZE ", not this code";
#else
    if (test_under_valgrind())
        why = "under valgrind: Open MPI's processes are not ours to check";
#endif
    return why;
}

/* Whether EX_MPI runs in this binary's loops; says why not, once. */
static inline bool test_mpi_ready(void)
{
    static bool said;
    const char *why = test_mpi_started ? test_mpi_unavailable()
                                       : "this binary's main does not call test_start";
    if (why && !said) {
        printf("mpi: not tested here: %s\n", why);
        fflush(stdout);
        said = true;
    }
    return why == NULL;
}

static inline kind_list test_kinds(unsigned which)
{
    kind_list l = {.n = 0};
    for (int k = EX_SEQ; k <= EX_MPI; k++)
        if ((which & (1u << k)) && (k != EX_MPI || test_mpi_ready()))
            l.kind[l.n++] = (ex_kind)k;
    return l;
}

/* What differs between the backends, as properties rather than kinds. */

/* The task runs inside ex_submit (seq). */
static inline bool kind_runs_inline(ex_kind k)
{
    return k == EX_SEQ;
}

/* The task runs in another process than the caller's: it sees none of the
 * test's globals written after the start (procs: a fork-time copy; mpi:
 * none), its pid is not ours, and CALLER_RUNS is refused (a task run in
 * the caller would have neither isolation nor timeout). */
static inline bool kind_in_other_process(ex_kind k)
{
    return k == EX_PROCS || k == EX_MPI;
}

/* Tasks are sent ahead into a worker's window, RUNNING for the API before
 * they begin (ex_config.window; make_unpipelined turns it off). */
static inline bool kind_sends_ahead(ex_kind k)
{
    return k == EX_PROCS;
}

/* The executor holds one thread per worker in this process (threads; mpi:
 * each the proxy of an MPI worker). */
static inline bool kind_has_worker_threads(ex_kind k)
{
    return k == EX_THREADS || k == EX_MPI;
}

/* ------------------------------------------------------------- the gate */

/* Tasks that must block until the test says so read a byte from a gate:
 * it works the same in a thread, a forked worker and an MPI worker, and no
 * test depends on how fast a loaded machine runs.  A gate channel is a
 * named FIFO in a temporary directory that the group setup makes
 * (gate_setup) before any ex_create, opened O_RDWR (never EOF, and no
 * open blocks).  The test process opens every channel there, without
 * O_CLOEXEC: forked workers keep them (the process pool's fork server
 * closes close-on-exec fds).  An MPI worker, which Open MPI's orted starts
 * afresh from the executable, opens them on first use from the directory
 * in GATE_ENV (set before ex_create: the broker, orted and the workers
 * inherit it).  Channel 0 is task_gate's; the others are for a test's own
 * tasks (gate_pass, gate_open_channel).  A gate task counts its start in
 * a counter in a file there, mapped MAP_SHARED, so that a worker's count
 * shows here: RUNNING is not begun in the process pool, which sends tasks
 * ahead.  gate_teardown removes the directory. */
#define GATE_ENV "POOLBENCH_TEST_GATE_DIR"
#define GATE_CHANNELS 4
static int gate_fd[GATE_CHANNELS] __attribute__((unused));
static _Atomic uint64_t *gate_started __attribute__((unused));
/* gate_fd and gate_started are open in this process. */
static atomic_bool gate_attached __attribute__((unused));
static char gate_dir[64] __attribute__((unused));

/* dir/name into path. */
static inline void gate_path(char *path, size_t size, const char *dir, const char *name)
{
    snprintf(path, size, "%s/%s", dir, name);
}

/* Opens (create: makes first) the gate's files under dir.  0 or -1. */
static inline int gate_files(const char *dir, bool create)
{
    char path[128];
    for (int i = 0; i < GATE_CHANNELS; i++) {
        char name[16];
        snprintf(name, sizeof name, "gate%d", i);
        gate_path(path, sizeof path, dir, name);
        if ((create && mkfifo(path, 0600) != 0) || (gate_fd[i] = open(path, O_RDWR)) < 0)
            return -1;
    }
    gate_path(path, sizeof path, dir, "started");
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
    if (fd < 0 || (create && ftruncate(fd, sizeof *gate_started) != 0)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    void *m = mmap(NULL, sizeof *gate_started, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    gate_started = m;
    atomic_store(&gate_attached, true);
    return 0;
}

/* In an MPI worker: the test's gate, from GATE_ENV, once.  0 or -1. */
static inline int gate_attach(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    const char *dir = getenv(GATE_ENV);
    int rc = atomic_load(&gate_attached) ? 0 : dir ? gate_files(dir, false) : -1;
    pthread_mutex_unlock(&lock);
    return rc;
}

static inline int gate_setup(void **state)
{
    (void)state;
    snprintf(gate_dir, sizeof gate_dir, "/tmp/pb_test_gate_XXXXXX");
    if (!mkdtemp(gate_dir) || gate_files(gate_dir, true) != 0)
        return -1;
    return setenv(GATE_ENV, gate_dir, 1);
}

static inline int gate_teardown(void **state)
{
    (void)state;
    if (!atomic_load(&gate_attached))
        return 0;
    char path[128], name[16];
    for (int i = 0; i < GATE_CHANNELS; i++) {
        close(gate_fd[i]);
        snprintf(name, sizeof name, "gate%d", i);
        gate_path(path, sizeof path, gate_dir, name);
        unlink(path);
    }
    munmap((void *)gate_started, sizeof *gate_started);
    gate_started = NULL;
    atomic_store(&gate_attached, false);
    gate_path(path, sizeof path, gate_dir, "started");
    unlink(path);
    rmdir(gate_dir);
    unsetenv(GATE_ENV);
    return 0;
}

/* Lets n tasks blocked on channel go. */
static inline void gate_open_channel(int channel, int n)
{
    for (int i = 0; i < n; i++) {
        char c = 'g';
        assert_int_equal(write(gate_fd[channel], &c, 1), 1);
    }
}

/* Lets n blocked gate tasks go. */
static inline void gate_open(int n)
{
    gate_open_channel(0, n);
}

/* Gate tasks begun so far, and waiting until that count reaches n. */
static inline uint64_t gate_starts(void)
{
    return atomic_load(gate_started);
}

static inline void wait_gate_starts(uint64_t n)
{
    for (int i = 0; i < 20000 * test_slow() && gate_starts() < n; i++)
        sleep_ms(1);
    assert_true(gate_starts() >= n);
}

/* In a task: blocks until the test opens channel.  0, or -1 if the gate
 * cannot be reached. */
static inline int gate_pass(int channel)
{
    if (gate_attach() != 0)
        return -1;
    char c;
    ssize_t r;
    do
        r = read(gate_fd[channel], &c, 1);
    while (r == -1 && errno == EINTR);
    return r == 1 ? 0 : -1;
}

/* Blocks until the test opens the gate; output "gated" (code 8: no gate). */
static inline int task_gate(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    if (gate_attach() != 0)
        return 8;
    atomic_fetch_add(gate_started, 1);
    if (gate_pass(0) != 0)
        return 8;
    return ex_buf_append(out, "gated", 5) ? 9 : 0;
}

/* ------------------------------------------------------- common tasks */

/* out = 2 * in + 1 (uint32). */
static inline int task_double(const void *in, size_t len, ex_buf *out)
{
    if (len != sizeof(uint32_t))
        return 22;
    uint32_t v;
    memcpy(&v, in, sizeof v);
    v = 2 * v + 1;
    return ex_buf_append(out, &v, sizeof v) ? 9 : 0;
}

/* Sleeps the uint32 number of ms in the input; out = the input. */
static inline int task_sleep_ms(const void *in, size_t len, ex_buf *out)
{
    uint32_t ms;
    if (len != sizeof ms)
        return 22;
    memcpy(&ms, in, sizeof ms);
    sleep_ms(ms);
    return ex_buf_append(out, &ms, sizeof ms) ? 9 : 0;
}

/* out = in. */
static inline int task_echo(const void *in, size_t len, ex_buf *out)
{
    return ex_buf_append(out, in, len) ? 90 : 0;
}

/* out = the pid of the process that ran it (int32). */
static inline int task_pid(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    int32_t pid = (int32_t)getpid();
    return ex_buf_append(out, &pid, sizeof pid) ? 90 : 0;
}

static inline int task_empty(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    return 0;
}

/* Fails with code = the input value (uint32) when it is odd; else out =
 * in. */
static inline int task_fail_odd(const void *in, size_t len, ex_buf *out)
{
    uint32_t v;
    if (len != sizeof v)
        return 22;
    memcpy(&v, in, sizeof v);
    if (v % 2)
        return (int)v;
    return ex_buf_append(out, &v, sizeof v) ? 9 : 0;
}

/* Crashes its process (abort, no core file). */
static inline int task_abort(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    crash_now();
}

/* Never returns (a process-pool timeout ends it). */
static inline int task_hang(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    for (;;)
        pause();
    return 95;
}

/* An initializer that fails: the executor is broken from the start. */
static inline int init_fail(void *arg)
{
    (void)arg;
    return 1;
}

/* ------------------------------------------------- a test binary's start */

/* The common tasks under their EX_MPI names ("test.<name>"), the same in
 * the test and in its MPI workers. */
static inline void test_register_tasks(void)
{
    static const struct {
        const char *name;
        ex_task_fn fn;
    } tasks[] = {
        {"test.gate", task_gate},         {"test.double", task_double},
        {"test.sleep_ms", task_sleep_ms}, {"test.echo", task_echo},
        {"test.pid", task_pid},           {"test.empty", task_empty},
        {"test.fail_odd", task_fail_odd}, {"test.abort", task_abort},
        {"test.hang", task_hang},
    };
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        if (ex_task_register(tasks[i].name, tasks[i].fn) != 0) {
            fprintf(stderr, "cannot register %s\n", tasks[i].name);
            exit(1);
        }
}

/* The tests' own Open MPI settings, not the user's: root allowed (a
 * container's CI), the TCP transport forced (the network path). */
static inline void test_mpi_env(void)
{
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_btl", "tcp,self", 1);
}

/* The top of main of a test binary whose loops run on EX_MPI: registers
 * the common tasks and the file's own (register_own, may be NULL), then
 * ex_worker_main: true in a process that ex_create(EX_MPI) started (the
 * broker, an MPI worker), where main returns 0 at once, before cmocka.
 * In the test itself: false, with the Open MPI settings and the alarm. */
static inline bool test_start(int *argc, char ***argv, void (*register_own)(void))
{
    test_register_tasks();
    if (register_own)
        register_own();
    if (ex_worker_main(argc, argv))
        return true;
    test_mpi_env();
    test_alarm();
    test_mpi_started = true;
    return false;
}

/* ---------------------------------------------- executors, with asserts */

static inline ex_executor *make(ex_kind kind, unsigned workers)
{
    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = workers;
    ex_executor *ex = NULL;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    assert_non_null(ex);
    return ex;
}

/* The process pool's settings the tests vary (the rest are defaults). */
typedef struct procs_opts {
    unsigned workers, window, max_tasks;
    int64_t timeout_ns;
    size_t max_payload;
    ex_transport transport;
} procs_opts;

static const ex_transport all_transports[] __attribute__((unused)) = {
    EX_TRANSPORT_PIPE, EX_TRANSPORT_SHM};

/* A process pool with these settings, started and not broken. */
static inline ex_executor *make_procs(procs_opts o)
{
    ex_config cfg;
    ex_config_init(&cfg, EX_PROCS);
    cfg.max_workers = o.workers;
    cfg.window = o.window;
    cfg.max_tasks_per_worker = o.max_tasks;
    cfg.timeout_ns = o.timeout_ns;
    cfg.max_payload = o.max_payload;
    cfg.transport = o.transport;
    ex_executor *ex = NULL;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    assert_non_null(ex);
    assert_int_equal(ex_workers(ex), o.workers);
    assert_false(ex_is_broken(ex));
    return ex;
}

/* ex_submit that must succeed. */
static inline ex_future *submit_ok(ex_executor *ex, ex_task_fn fn,
                                   const void *in, size_t len)
{
    ex_future *f = NULL;
    assert_int_equal(ex_submit(ex, fn, in, len, &f), 0);
    assert_non_null(f);
    return f;
}

/* A pool whose tasks queued behind the running ones stay PENDING until a
 * worker is free, so that a test may cancel them: the process pool with a
 * window of 1 (by default it sends tasks ahead, RUNNING for the API). */
static inline ex_executor *make_unpipelined(ex_kind kind, unsigned workers)
{
    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = workers;
    cfg.window = 1;
    ex_executor *ex = NULL;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    assert_non_null(ex);
    return ex;
}

/* Until f runs (polling; a loaded machine may take long to start it). */
static inline void wait_running(ex_future *f)
{
    for (int i = 0; i < 20000 * test_slow() && ex_future_state(f) == EX_PENDING; i++)
        sleep_ms(1);
    assert_int_equal(ex_future_state(f), EX_RUNNING);
}

/* f's output, which must be one uint32 (u32_of) or int32 (i32_of). */
static inline uint32_t u32_of(ex_future *f)
{
    const void *out;
    size_t len;
    assert_int_equal(ex_future_result(f, &out, &len, test_hang_ns()), 0);
    assert_int_equal(len, sizeof(uint32_t));
    uint32_t v;
    memcpy(&v, out, sizeof v);
    return v;
}

static inline int32_t i32_of(ex_future *f)
{
    return (int32_t)u32_of(f);
}

/* fn(argc, argv) with stdout into out and stderr into err (both
 * NUL-terminated, truncated to their sizes); returns fn's status.  For the
 * CLI tests: a subcommand's main function, captured in process. */
static inline int capture_main(int (*fn)(int, char **), int argc, char **argv,
                               char *out, size_t outlen, char *err,
                               size_t errlen)
{
    fd_capture co, ce;
    assert_int_equal(fd_capture_begin(&co, STDOUT_FILENO), 0);
    assert_int_equal(fd_capture_begin(&ce, STDERR_FILENO), 0);
    int rc = fn(argc, argv);
    fd_capture_end(&ce);
    fd_capture_end(&co);
    fd_capture *caps[2] = {&co, &ce};
    char *bufs[2] = {out, err};
    size_t lens[2] = {outlen, errlen};
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        char *text = fd_capture_text(caps[i], &len);
        assert_non_null(text);
        if (len > lens[i] - 1)
            len = lens[i] - 1;
        memcpy(bufs[i], text, len);
        bufs[i][len] = 0;
        free(text);
        fd_capture_close(caps[i]);
    }
    return rc;
}

#endif
