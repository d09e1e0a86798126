#ifndef OVERSEER_SHIMS_H
#define OVERSEER_SHIMS_H

#include <stdint.h>
#include <sys/types.h>
#include <signal.h>

/// Everything the child needs, prepared by the parent before the fork:
/// between fork and exec only async-signal-safe calls are made.
typedef struct overseer_spawn_request {
    /// The program, already resolved (no PATH search happens here).
    const char *path;
    char *const *argv;
    char *const *envp;
    /// fd_map[i] is the parent's fd that becomes fd i in the child; -1 leaves fd i
    /// as inherited (allowed for 0, 1 and 2 only). Every fd >= fd_count is
    /// close-on-exec in the child.
    const int *fd_map;
    int fd_count;
    /// When not NULL: a buffer inside one of envp's strings, at least 21 bytes,
    /// into which the child writes its own pid as decimal digits (LISTEN_PID).
    char *own_pid_digits;
    /// Non-zero: the child gets its own process group (setpgid(0, 0)).
    int new_process_group;
    /// Non-zero: PR_SET_PDEATHSIG with this signal.
    int parent_death_signal;
    /// NULL or a directory to chdir into.
    const char *working_directory;
    /// >= 0: drop to this user and group (supplementary groups cleared) before exec.
    int uid;
    int gid;
    /// Non-zero: PR_SET_NO_NEW_PRIVS, so the program cannot gain privileges again.
    int no_new_privileges;
} overseer_spawn_request;

/// Where a failed spawn failed.
enum {
    OVERSEER_SPAWN_STAGE_PIPE = 1,
    OVERSEER_SPAWN_STAGE_FORK = 2,
    OVERSEER_SPAWN_STAGE_FDS = 3,
    OVERSEER_SPAWN_STAGE_SIGNALS = 4,
    OVERSEER_SPAWN_STAGE_SETUP = 5,
    OVERSEER_SPAWN_STAGE_CHDIR = 6,
    OVERSEER_SPAWN_STAGE_EXEC = 7,
};

/// Forks and execs. Returns the child's pid, or -1 with *error_out set to the
/// errno and *stage_out to the OVERSEER_SPAWN_STAGE_* that failed (the failed
/// child, if any, is already reaped).
pid_t overseer_spawn(const overseer_spawn_request *request, int *error_out, int *stage_out);

int overseer_pidfd_open(pid_t pid);
int overseer_pidfd_send_signal(int pidfd, int signal);

/// Reaps a child that has exited, without blocking. Pass pidfd >= 0 to wait on
/// the pidfd (P_PIDFD), else pid. Returns 1 when reaped (*exit_code or
/// *signal_number set, the other -1), 0 when still running, -1 on error (errno).
int overseer_reap(int pidfd, pid_t pid, int *exit_code, int *signal_number);

/// 1 if the child has exited (it stays a zombie: not reaped), 0 while it runs, -1 on error.
int overseer_has_exited(int pidfd, pid_t pid);

/// The pid of a child that has exited, left a zombie (waitid WNOWAIT, any
/// child, __WALL); 0 when none has exited or there is no child, -1 on error.
pid_t overseer_peek_exited_child(void);
/// Reaps `pid` if it has exited, without blocking: 1 reaped (*exit_code or
/// *signal_number set, the other -1), 0 still running, -1 on error (errno).
int overseer_reap_pid(pid_t pid, int *exit_code, int *signal_number);
/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of descendants come to us.
int overseer_set_child_subreaper(void);
/// 1 while the process has a child (exited or not), 0 when it has none, -1 on error.
int overseer_has_children(void);
/// Waits at most `timeout_ns` for a SIGCHLD (which must be blocked) and takes
/// it: 1 one came, 0 the time ran out, -1 on error.
int overseer_wait_for_sigchld(int64_t timeout_ns);

/// Resets every catchable signal's disposition to SIG_DFL and blocks them all,
/// in the calling thread (call it first in main, before any thread exists).
void overseer_block_all_signals(void);
/// A non-blocking, close-on-exec signalfd for every catchable signal.
int overseer_signalfd_all(void);
/// Reads one signal from a signalfd: returns 1 and sets *signo/*sender/*code
/// (ssi_code: SI_USER, SI_KERNEL, ...), 0 if none is pending, -1 on error.
int overseer_signalfd_read(int fd, int *signo, pid_t *sender, int *code);
/// Dies of `signo` with its default action and no core file; falls back to
/// _exit(128 + signo) if the signal does not terminate.
void overseer_die_by_signal(int signo) __attribute__((noreturn));

int overseer_epoll_create(void);
int overseer_epoll_add(int epfd, int fd, uint64_t token);
/// Watches `fd` for writability (EPOLLOUT) instead of readability.
int overseer_epoll_add_writable(int epfd, int fd, uint64_t token);
int overseer_epoll_remove(int epfd, int fd);
/// Waits for events; timeout_ms -1 waits forever. Fills tokens; returns the count or -1.
int overseer_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);

/// A CLOCK_MONOTONIC, close-on-exec, non-blocking timerfd.
int overseer_timerfd_create(void);
/// Arms the timer for an absolute CLOCK_MONOTONIC time in ns; 0 disarms.
int overseer_timerfd_arm(int fd, int64_t deadline_ns);
/// Now, CLOCK_MONOTONIC, in nanoseconds.
int64_t overseer_monotonic_ns(void);

/// What overseer_recv_with_credentials found wrong with a datagram, as bits in *truncated.
enum {
    /// The datagram was longer than the buffer.
    OVERSEER_RECEIVED_TRUNCATED = 1,
    /// More ancillary data (fds) came than fits: the kernel dropped the rest.
    OVERSEER_RECEIVED_CONTROL_TRUNCATED = 2,
    /// File descriptors came with it (closed at once).
    OVERSEER_RECEIVED_FDS = 4,
};
/// Receives one datagram with the sender's credentials (the socket must have
/// SO_PASSCRED). Passed fds are closed. Returns the byte count (and sets the
/// OVERSEER_RECEIVED_* bits in *truncated), 0 with *pid = 0 when no
/// credentials came, -1 on error (errno; EAGAIN when none is queued).
ssize_t overseer_recv_with_credentials(int fd, void *buffer, size_t length,
                                       pid_t *pid, uid_t *uid, int *truncated);

/// A close-on-exec, non-blocking inotify fd watching `directory` for files
/// created, written, moved in, or changed.
int overseer_inotify_watch_directory(const char *directory);
/// What overseer_inotify_drain saw, as bits.
enum {
    /// The file was created, written or its attributes changed: a writer may still be at work.
    OVERSEER_INOTIFY_CHANGED = 1,
    /// The watched directory itself went away.
    OVERSEER_INOTIFY_DIRECTORY_GONE = 2,
    /// A file was renamed onto the name: complete.
    OVERSEER_INOTIFY_RENAMED = 4,
    /// A writer of the file closed it: complete, unless another writer still has it open.
    OVERSEER_INOTIFY_CLOSED_AFTER_WRITING = 8,
};
/// Drains pending inotify events. Returns the OVERSEER_INOTIFY_* bits of what
/// concerned `name` or the directory (0 when nothing did), -1 on error.
int overseer_inotify_drain(int fd, const char *name);

/// A close-on-exec memfd (for the state handed to a re-executed overseerd).
int overseer_memfd_create(const char *name);

/// Receives one datagram and the fds passed with it (up to max_fds; more are
/// closed). Returns the byte count, -1 on error.
ssize_t overseer_recv_with_fds(int fd, void *buffer, size_t length, int *fds, int max_fds, int *fd_count);

/// Reads the peer credentials of a connected unix socket.
int overseer_peer_credentials(int fd, pid_t *pid, uid_t *uid);

/// pipe2(fds, O_CLOEXEC).
int overseer_pipe_cloexec(int fds[2]);
/// accept4 with SOCK_CLOEXEC | SOCK_NONBLOCK, no address.
int overseer_accept(int fd);
/// Whether a process has the file open for writing: 1 yes, 0 no (a read lease
/// could be taken, and was dropped again), -1 unknown (leases not allowed here).
int overseer_has_writer(int fd);

/// The maps and program that steer one UDP listener's datagrams (udp_steering.c).
typedef struct overseer_udp_steering {
    /// BPF_PROG_TYPE_SK_REUSEPORT: attached to the SO_REUSEPORT group.
    int program_fd;
    /// REUSEPORT_SOCKARRAY: slot -> socket.
    int sockets_fd;
    /// LRU hash: overseer_flow_key -> overseer_flow_value.
    int flows_fd;
    /// Array: slot -> the tag of the socket in it (0: empty).
    int tags_fd;
    /// Array of one overseer_steering_config.
    int config_fd;
} overseer_udp_steering;

/// A flow: the 4-tuple of its datagrams as they arrive (network byte order).
typedef struct overseer_flow_key {
    /// IPv4: source then destination in the first 8 bytes; IPv6: both, 32 bytes.
    uint8_t addresses[32];
    uint16_t source_port;
    uint16_t destination_port;
    /// 4 or 6.
    uint32_t family;
} overseer_flow_key;

typedef struct overseer_flow_value {
    uint32_t slot;
    uint32_t tag;
    /// CLOCK_MONOTONIC, ns.
    uint64_t last_seen_ns;
} overseer_flow_value;

typedef struct overseer_steering_config {
    /// Where new flows go.
    uint32_t newest_slot;
    uint32_t unused;
    /// A flow with no datagram for longer is a new flow.
    uint64_t flow_timeout_ns;
} overseer_steering_config;

/// Which step of overseer_udp_steering_create failed.
enum {
    /// Creating the array maps (bpf(2) itself refused: EPERM, ENOSYS).
    OVERSEER_STEERING_STAGE_MAPS = 1,
    /// The REUSEPORT_SOCKARRAY map (EINVAL: a kernel before 4.19).
    OVERSEER_STEERING_STAGE_SOCKARRAY = 2,
    /// The LRU hash of flows.
    OVERSEER_STEERING_STAGE_FLOWS = 3,
    /// Loading the program (EACCES: the verifier refused it, its log in `log`).
    OVERSEER_STEERING_STAGE_PROGRAM = 4,
};

/// Creates the maps (every slot empty, new flows to slot 0) and loads the
/// program. Returns 0, or -1 with errno and *stage_out set (nothing left open).
int overseer_udp_steering_create(uint32_t slots, uint32_t max_flows, uint64_t timeout_ns,
                                 overseer_udp_steering *out, int *stage_out, char *log, size_t log_size);
/// Closes the fds (the program stays with a group it is attached to).
void overseer_udp_steering_close(overseer_udp_steering *steering);
/// setsockopt(SO_ATTACH_REUSEPORT_EBPF) on a bound SO_REUSEPORT socket: for its whole group.
int overseer_udp_steering_attach(int program_fd, int socket_fd);
/// Puts a bound socket of the group in `slot`, named by `tag` (not 0).
int overseer_udp_steering_set_slot(const overseer_udp_steering *steering, uint32_t slot, int socket_fd, uint32_t tag);
/// Empties `slot`: its flows become new flows at their next datagram.
int overseer_udp_steering_clear_slot(const overseer_udp_steering *steering, uint32_t slot);
/// Where new flows go, and the flow timeout.
int overseer_udp_steering_configure(const overseer_udp_steering *steering, uint32_t newest_slot, uint64_t timeout_ns);
/// Counts the live flows of each slot (counts[slots]; tags[slots] as set):
/// returns the total, or -1 (errno).
int64_t overseer_udp_steering_count_flows(const overseer_udp_steering *steering, const uint32_t *tags, uint32_t slots,
                                          uint64_t timeout_ns, uint64_t *counts);

#endif
