#define _GNU_SOURCE
#include "overseer_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Everything below runs in the child between fork and execve, so it only calls
// async-signal-safe functions and touches no memory it would have to allocate.

static void child_fail(int report_fd, int stage) {
    int report[2] = { stage, errno };
    ssize_t ignored = write(report_fd, report, sizeof report);
    (void)ignored;
    _exit(127);
}

static void write_decimal(char *out, long value) {
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value > 0 && n < 23);
    for (int i = 0; i < n; i++) out[i] = digits[n - 1 - i];
    out[n] = '\0';
}

// The kernel's struct sigaction (x86_64 and arm64 share this layout). glibc's
// sigaction() refuses the two signals it reserves for itself (32 and 33), yet
// an ignored disposition of theirs is inherited across exec all the same.
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

static void reset_disposition(int signo) {
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    if (sigaction(signo, &default_action, NULL) == 0) return;
    struct kernel_sigaction raw;
    memset(&raw, 0, sizeof raw);
    raw.handler = SIG_DFL;
    syscall(SYS_rt_sigaction, signo, &raw, NULL, sizeof raw.mask);
}

static int mark_cloexec_from(int first) {
    if (syscall(SYS_close_range, (unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
    // Older kernels: walk up to the fd limit.
    struct rlimit limit;
    long last = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && (long)limit.rlim_cur < last)
        last = (long)limit.rlim_cur;
    for (long fd = first; fd < last; fd++) {
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
}

static void run_child(const overseer_spawn_request *request, int report_fd, pid_t parent) {
    int count = request->fd_count;
    int floor = count > 3 ? count : 3;

    // The report pipe must not sit where a mapped fd goes.
    if (report_fd < floor) {
        int moved = fcntl(report_fd, F_DUPFD_CLOEXEC, floor);
        if (moved < 0) child_fail(report_fd, OVERSEER_SPAWN_STAGE_FDS);
        report_fd = moved;
    }
    // Copy every source above the target range first, so that a source already
    // sitting on a target number (a listener on fd 3, say) is not overwritten.
    int staged[count > 0 ? count : 1];
    for (int i = 0; i < count; i++) {
        staged[i] = -1;
        if (request->fd_map[i] < 0) continue;
        staged[i] = fcntl(request->fd_map[i], F_DUPFD_CLOEXEC, floor);
        if (staged[i] < 0) child_fail(report_fd, OVERSEER_SPAWN_STAGE_FDS);
    }
    for (int i = 0; i < count; i++) {
        if (staged[i] < 0) continue;
        // dup2 leaves the new fd without FD_CLOEXEC: exactly the ones the program gets.
        if (dup2(staged[i], i) < 0) child_fail(report_fd, OVERSEER_SPAWN_STAGE_FDS);
    }
    mark_cloexec_from(floor);

    // Dispositions and the mask are inherited across exec: start the program
    // with every signal at its default and nothing blocked.
    for (int signo = 1; signo < NSIG; signo++) {
        if (signo == SIGKILL || signo == SIGSTOP) continue;
        reset_disposition(signo);
    }
    sigset_t empty;
    sigemptyset(&empty);
    if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0) child_fail(report_fd, OVERSEER_SPAWN_STAGE_SIGNALS);

    if (request->new_process_group && setpgid(0, 0) != 0) child_fail(report_fd, OVERSEER_SPAWN_STAGE_SETUP);
    if (request->parent_death_signal > 0) {
        if (prctl(PR_SET_PDEATHSIG, request->parent_death_signal) != 0) child_fail(report_fd, OVERSEER_SPAWN_STAGE_SETUP);
        // The parent may already be gone, before the prctl took effect.
        if (getppid() != parent) _exit(127);
    }
    if (request->gid >= 0) {
        if (setgroups(0, NULL) != 0 || setresgid(request->gid, request->gid, request->gid) != 0)
            child_fail(report_fd, OVERSEER_SPAWN_STAGE_SETUP);
    }
    if (request->uid >= 0 && setresuid(request->uid, request->uid, request->uid) != 0)
        child_fail(report_fd, OVERSEER_SPAWN_STAGE_SETUP);
    if (request->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(report_fd, OVERSEER_SPAWN_STAGE_SETUP);
    if (request->working_directory && chdir(request->working_directory) != 0)
        child_fail(report_fd, OVERSEER_SPAWN_STAGE_CHDIR);
    if (request->own_pid_digits) write_decimal(request->own_pid_digits, (long)getpid());

    execve(request->path, request->argv, request->envp);
    child_fail(report_fd, OVERSEER_SPAWN_STAGE_EXEC);
}

pid_t overseer_spawn(const overseer_spawn_request *request, int *error_out, int *stage_out) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *error_out = errno; *stage_out = OVERSEER_SPAWN_STAGE_PIPE;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error_out = errno; *stage_out = OVERSEER_SPAWN_STAGE_FORK;
        close(report[0]); close(report[1]);
        return -1;
    }
    if (pid == 0) {
        close(report[0]);
        run_child(request, report[1], parent);
    }
    close(report[1]);
    int failure[2];
    ssize_t got;
    do { got = read(report[0], failure, sizeof failure); } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof failure) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *stage_out = failure[0];
        *error_out = failure[1];
        return -1;
    }
    return pid;
}
