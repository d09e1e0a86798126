#define _GNU_SOURCE
#include "overseer_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <limits.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int overseer_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int overseer_pidfd_send_signal(int pidfd, int signal) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

int overseer_reap(int pidfd, pid_t pid, int *exit_code, int *signal_number) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do {
        rc = pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG)
                        : waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    if (info.si_pid == 0) return 0;
    *exit_code = -1;
    *signal_number = -1;
    if (info.si_code == CLD_EXITED) *exit_code = info.si_status;
    else *signal_number = info.si_status;
    return 1;
}

int overseer_has_exited(int pidfd, pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do {
        rc = pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG | WNOWAIT)
                        : waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    return info.si_pid != 0;
}

void overseer_block_all_signals(void) {
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    // An inherited SIG_IGN would discard a signal before signalfd could see it.
    for (int signo = 1; signo < NSIG; signo++) {
        if (signo == SIGKILL || signo == SIGSTOP) continue;
        sigaction(signo, &default_action, NULL);
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
}

int overseer_signalfd_all(void) {
    sigset_t all;
    sigfillset(&all);
    return signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
}

int overseer_signalfd_read(int fd, int *signo, pid_t *sender, int *code) {
    struct signalfd_siginfo info;
    ssize_t got;
    do { got = read(fd, &info, sizeof info); } while (got < 0 && errno == EINTR);
    if (got < 0) return errno == EAGAIN ? 0 : -1;
    if (got != (ssize_t)sizeof info) { errno = EIO; return -1; }
    *signo = (int)info.ssi_signo;
    *sender = (pid_t)info.ssi_pid;
    *code = info.ssi_code;
    return 1;
}

void overseer_die_by_signal(int signo) {
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    sigaction(signo, &default_action, NULL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signo);
    raise(signo);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    // A signal whose default is to stop or be ignored does not end us.
    _exit(128 + signo);
}

int overseer_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

static int epoll_add_events(int epfd, int fd, uint64_t token, uint32_t events) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int overseer_epoll_add(int epfd, int fd, uint64_t token) {
    return epoll_add_events(epfd, fd, token, EPOLLIN);
}

int overseer_epoll_add_writable(int epfd, int fd, uint64_t token) {
    return epoll_add_events(epfd, fd, token, EPOLLOUT);
}

int overseer_epoll_remove(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

int overseer_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

int overseer_timerfd_create(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
}

int overseer_timerfd_arm(int fd, int64_t deadline_ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    if (deadline_ns > 0) {
        spec.it_value.tv_sec = deadline_ns / 1000000000;
        spec.it_value.tv_nsec = deadline_ns % 1000000000;
    }
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

int64_t overseer_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/// One datagram or message with what came beside it: the sender's credentials
/// (pid 0 and uid -1 when none came) and up to max_fds passed fds, the others
/// closed at once. The two receivers below differ only in what they keep.
static ssize_t receive_message(int fd, void *buffer, size_t length, int flags,
                               pid_t *pid, uid_t *uid, int *truncated,
                               int *fds, int max_fds, int *fd_count) {
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 64)];
    } control;
    struct iovec iov = { buffer, length };
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = &control;
    message.msg_controllen = sizeof control;
    ssize_t got;
    do { got = recvmsg(fd, &message, flags | MSG_CMSG_CLOEXEC); } while (got < 0 && errno == EINTR);
    if (got < 0) return -1;
    *pid = 0;
    *uid = (uid_t)-1;
    *fd_count = 0;
    *truncated = 0;
    if ((message.msg_flags & MSG_TRUNC) != 0 || (size_t)got > length) *truncated |= OVERSEER_RECEIVED_TRUNCATED;
    if ((message.msg_flags & MSG_CTRUNC) != 0) *truncated |= OVERSEER_RECEIVED_CONTROL_TRUNCATED;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred credentials;
            memcpy(&credentials, CMSG_DATA(c), sizeof credentials);
            *pid = credentials.pid;
            *uid = credentials.uid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            if (count > 0) *truncated |= OVERSEER_RECEIVED_FDS;
            for (size_t i = 0; i < count; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                if (*fd_count < max_fds) fds[(*fd_count)++] = passed;
                else close(passed);
            }
        }
    }
    return (size_t)got > length ? (ssize_t)length : got;
}

ssize_t overseer_recv_with_credentials(int fd, void *buffer, size_t length,
                                       pid_t *pid, uid_t *uid, int *truncated) {
    // FDSTORE and the like are not for us: never keep a passed fd.
    int fd_count;
    return receive_message(fd, buffer, length, MSG_DONTWAIT | MSG_TRUNC, pid, uid, truncated, NULL, 0, &fd_count);
}

int overseer_peer_credentials(int fd, pid_t *pid, uid_t *uid) {
    struct ucred credentials;
    socklen_t size = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    return 0;
}

int overseer_inotify_watch_directory(const char *directory) {
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0) return -1;
    uint32_t mask = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB | IN_DELETE
                  | IN_DELETE_SELF | IN_MOVE_SELF;
    if (inotify_add_watch(fd, directory, mask) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int overseer_inotify_drain(int fd, const char *name) {
    char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int result = 0;
    for (;;) {
        ssize_t got = read(fd, buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return result;
            return -1;
        }
        if (got == 0) return result;
        for (char *at = buffer; at < buffer + got;) {
            const struct inotify_event *event = (const struct inotify_event *)at;
            if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) result |= OVERSEER_INOTIFY_DIRECTORY_GONE;
            else if (event->len > 0 && strcmp(event->name, name) == 0) {
                if (event->mask & IN_MOVED_TO) result |= OVERSEER_INOTIFY_RENAMED;
                else if (event->mask & IN_CLOSE_WRITE) result |= OVERSEER_INOTIFY_CLOSED_AFTER_WRITING;
                else result |= OVERSEER_INOTIFY_CHANGED;
            }
            at += sizeof(struct inotify_event) + event->len;
        }
    }
}

int overseer_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

ssize_t overseer_recv_with_fds(int fd, void *buffer, size_t length, int *fds, int max_fds, int *fd_count) {
    pid_t pid;
    uid_t uid;
    int truncated;
    return receive_message(fd, buffer, length, 0, &pid, &uid, &truncated, fds, max_fds, fd_count);
}

int overseer_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int overseer_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

int overseer_has_writer(int fd) {
    if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
        fcntl(fd, F_SETLEASE, F_UNLCK);
        return 0;
    }
    return errno == EAGAIN ? 1 : -1;
}
