#define _GNU_SOURCE
#include "overseer_shims.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// __WALL: a child cloned without SIGCHLD as its exit signal is an orphan to
// reap like any other.

// Looks at any exited child without reaping it (WNOWAIT); -1 with errno on failure.
static int peek_any_child(siginfo_t *info) {
    memset(info, 0, sizeof *info);
    int rc;
    do {
        rc = waitid(P_ALL, 0, info, WEXITED | WNOHANG | WNOWAIT | __WALL);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

pid_t overseer_peek_exited_child(void) {
    siginfo_t info;
    if (peek_any_child(&info) < 0) return errno == ECHILD ? 0 : -1;
    return info.si_pid;
}

int overseer_reap_pid(pid_t pid, int *exit_code, int *signal_number) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do {
        rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | __WALL);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    if (info.si_pid == 0) return 0;
    if (info.si_code == CLD_EXITED) {
        *exit_code = info.si_status;
        *signal_number = -1;
    } else {
        *exit_code = -1;
        *signal_number = info.si_status;
    }
    return 1;
}

int overseer_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int overseer_has_children(void) {
    siginfo_t info;
    if (peek_any_child(&info) < 0) return errno == ECHILD ? 0 : -1;
    return 1;
}

int overseer_wait_for_sigchld(int64_t timeout_ns) {
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGCHLD);
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec timeout = { (time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000) };
    int rc = sigtimedwait(&only, NULL, &timeout);
    if (rc == SIGCHLD) return 1;
    return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}
