/*
 * calibrate_int.h - what the files of `poolbench calibrate` share: the
 * pipe, child and pinning helpers of calibrate_sys.c, used by the
 * round-trip (calibrate_rtt.c), spawn (calibrate_spawn.c) and bandwidth
 * (calibrate_bw.c) measures.  Not part of calibrate.h's API.
 */
#ifndef PB_CALIBRATE_INT_H
#define PB_CALIBRATE_INT_H

#include "pin.h"

#include <signal.h>
#include <sys/types.h>

/* One byte written / read, retrying EINTR: 0, -EPIPE at end of file
 * (read), or -errno. */
int pb_cal__write_byte(int fd, unsigned char b);
int pb_cal__read_byte(int fd, unsigned char *b);
/* Closes *fd if open and sets it to -1. */
void pb_cal__close_fd(int *fd);
/* Waits for pid: its exit status (0..255), 128 + signal, or -errno. */
int pb_cal__reap(pid_t pid);

/* SIGPIPE blocked in the calling thread for the duration of a pipe
 * measure; a SIGPIPE raised meanwhile is consumed on the way out. */
typedef struct {
    sigset_t old;
    int was_pending;
} sigpipe_guard;
int pb_cal__sigpipe_block(sigpipe_guard *g);
void pb_cal__sigpipe_unblock(sigpipe_guard *g);

/* Binds the calling thread as worker `index` of plan, after saving its
 * affinity in *saved (NULL plan: nothing to do); and back. */
int pb_cal__pin_self(const pb_pin_plan *plan, unsigned index,
                     pb_pin_saved **saved);
int pb_cal__unpin_self(pb_pin_saved *saved);

#endif /* PB_CALIBRATE_INT_H */
